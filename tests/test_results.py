"""The committed report in results/ is what `aimc-report` makes from the committed run records (no hand edits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aimc_runner import report

RESULTS = Path(__file__).resolve().parents[1] / "results"
REPORTS = sorted(p.parent for p in RESULTS.glob("*/runs"))
TEXT = ("table.md", "table.csv", "table.tex", "sources.md")


@pytest.mark.parametrize("folder", REPORTS, ids=[p.name for p in REPORTS])
def test_committed_report_regenerates_byte_for_byte(folder, tmp_path):
    assert report.main([str(folder / "runs"), "--out", str(tmp_path)]) == 0
    for name in TEXT:  # figures: same bytes for the same matplotlib build (tested in test_report.py)
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), f"{folder.name}/{name} is stale"
    committed_figures = {p.name for p in folder.glob("fig_*.png")}
    assert committed_figures == {p.name for p in tmp_path.glob("fig_*.png")}
