"""docs/RELIABILITY.md cannot drift: its counts are the suite's, its cited tests exist."""

from __future__ import annotations

import importlib.util

import pytest
from helpers.paths import REPO

ROOT = REPO


def _load_counts_module():
    spec = importlib.util.spec_from_file_location("reliability_counts",
                                                  ROOT / "bench" / "reliability_counts.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


counts = _load_counts_module()


@pytest.fixture(scope="module")
def node_ids() -> list[str]:
    return counts.collect()


def test_count_takes_each_parametrized_case_and_only_matching_tests(monkeypatch):
    monkeypatch.setattr(counts, "KINDS", {"a": ["tests/t.py::test_x"], "b": ["tests/u.py::*"]})
    ids = ["tests/t.py::test_x[1]", "tests/t.py::test_x[2-b]", "tests/t.py::test_x_more",
           "tests/u.py::test_y", "tests/u.py::test_z[p]", "tests/v.py::test_x"]
    assert counts.count(ids) == {"a": 2, "b": 2}
    monkeypatch.setattr(counts, "KINDS", {"a": ["tests/t.py::test_gone"]})
    assert counts.unmatched(ids) == ["tests/t.py::test_gone"]


def test_table_parsing_reads_kind_and_count():
    page = (f"# x\n\n{counts.TABLE_TITLE}\n\n| kind | cases | promise | tests |\n"
            "| --- | --- | --- | --- |\n| a kind | 12 | p | `t.py` |\n| other | 3 | q | r |\n"
            "\n## Next\n\n| a kind | 99 | not this table | |\n")
    assert counts.table_counts(page) == {"a kind": 12, "other": 3}
    rewritten = counts.with_counts(page, {"a kind": 5, "other": 3})
    assert counts.table_counts(rewritten) == {"a kind": 5, "other": 3}
    assert rewritten.endswith("| a kind | 99 | not this table | |\n")
    assert counts.cited_tests("`tests/t.py::test_a`, `test_b` and `test_c[1]`") == {
        "test_a", "test_b"}
    assert counts.cited_node_ids("`tests/t.py::test_a`, `test_b`") == {"tests/t.py::test_a"}


def test_every_pattern_matches_a_collected_test(node_ids):
    assert counts.unmatched(node_ids) == []


def test_the_summary_table_counts_are_the_suites(node_ids):
    in_doc = counts.table_counts(counts.DOC.read_text())
    assert in_doc == counts.count(node_ids), (
        "regenerate with: PYTHONPATH=src python bench/reliability_counts.py")


def test_every_test_cited_in_the_document_exists(node_ids):
    names = {node.split("::")[-1].split("[", 1)[0] for node in node_ids}
    cited = counts.cited_tests(counts.DOC.read_text())
    assert len(cited) > 50
    assert sorted(cited - names) == []
    bases = {node.split("[", 1)[0] for node in node_ids}
    assert sorted(counts.cited_node_ids(counts.DOC.read_text()) - bases) == []
