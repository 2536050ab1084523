"""The quickstart notebook runs top to bottom offline (tiny synthetic city, one epoch)."""

from __future__ import annotations

import nbformat
import pytest
from helpers.paths import REPO
from nbclient import NotebookClient

NOTEBOOK = REPO / "notebooks" / "quickstart.ipynb"


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(not cell.outputs and cell.execution_count is None
                              for cell in code_cells)
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow  # the notebook makes a city and trains: ~1.5 min on 2 cores
def test_quickstart_notebook_runs_on_the_tiny_city(tmp_path, monkeypatch):
    # The kernel inherits this environment: tiny preset, files under tmp_path.
    monkeypatch.setenv("VPR_NOTEBOOK_PRESET", "tiny")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    # kernel "python3" is this interpreter: jupyter_client runs a "python" kernelspec with
    # sys.executable, so the kernel sees the same installed vpr.
    client = NotebookClient(notebook, kernel_name="python3", timeout=300,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "\n".join(output.get("text", "") for cell in notebook.cells
                        if cell.cell_type == "code" for output in cell.outputs)
    assert "synthetic preset (offline): tiny" in outputs
    assert "Best checkpoint:" in outputs
    assert "prediction images in" in outputs
    run_dirs = list((tmp_path / "logs" / "lightning_logs").iterdir())
    assert len(run_dirs) == 1
    assert list((run_dirs[0] / "predictions").rglob("*.jpg"))
    assert (tmp_path / "data" / "synthetic_tiny" / "manifest.json").is_file()
    images = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.outputs if "image/png" in output.get("data", {})]
    assert len(images) >= 3  # a training place, the predictions, the recall curve
