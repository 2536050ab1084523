"""ONNX Runtime sessions as vpr runs them: one set of options for every caller.

`OnnxExtractor`, the parity check, `vpr export --test_path` and `bench/export_speed.py` all
open their sessions here, so what is measured is what runs. The options, and why:

- all graph optimizations (``ORT_ENABLE_ALL``): constant folding, Conv+Add+Relu fusion, and
  on AVX2/AVX-512 CPUs the NCHWc layout (convolutions on channel blocks) that makes fp32
  convolutions fast, plus the int8 kernels that replace QDQ pairs;
- one intra-op thread per physical core this process may run on (hyper-threads share a
  core's vector units, so a second thread per core only adds synchronisation), the count
  PyTorch uses by default too, so torch and ONNX Runtime compare with the same threads;
- sequential execution and one inter-op thread: a CNN is a chain of operators, nothing to
  run side by side;
- no spinning: between operators the pool's threads sleep instead of busy-waiting for the
  next one. Busy-waiting saves microseconds per operator on an idle machine, but where the
  cores are shared (other processes, the data loader, a web server's threads) the spinning
  threads take the CPU from the ones with work: ONNX Runtime fp32 ran 1.2x faster without
  it on the shared 2-core VM (docs/BENCHMARKS.md, export).

The optimized graph is not cached to a file: at ``ORT_ENABLE_ALL`` it holds CPU-specific
kernels (NCHWc blocks of the machine that wrote it), and building it takes 0.05-0.1 s for
ResNet-18 + ConvAP (measured on the 2-core VM).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def cpu_threads() -> int:
    """The logical CPUs this process may run on."""
    return len(_allowed_cpus())


def physical_cores(topology: Path = Path("/sys/devices/system/cpu")) -> int:
    """Physical cores among the CPUs this process may run on (hyper-threads counted once).

    Reads Linux's CPU topology (package and core id of each CPU); elsewhere, or where it
    cannot be read, every allowed logical CPU counts as a core.
    """
    cpus = _allowed_cpus()
    cores = set()
    try:
        for cpu in cpus:
            folder = topology / f"cpu{cpu}" / "topology"
            cores.add(((folder / "physical_package_id").read_text().strip(),
                       (folder / "core_id").read_text().strip()))
    except OSError:
        return len(cpus) or 1
    return len(cores) or 1


def default_threads() -> int:
    """Intra-op threads of ONNX Runtime (and of torch in the benchmark): physical cores."""
    return physical_cores()


def session_options(threads: int | None = None) -> Any:
    """The `onnxruntime.SessionOptions` of every vpr session.

    Args:
        threads: intra-op threads (default: `default_threads`).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or default_threads())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def cpu_session(path: str | Path, threads: int | None = None) -> Any:
    """An `onnxruntime.InferenceSession` of ``path`` on the CPU with `session_options`."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(path), session_options(threads),
                                        providers=["CPUExecutionProvider"])
