"""`<reports_dir>/leaderboard/index.html`: every run and blend's OOF metrics (and thresholded, nested
scores) as a table and bar charts, one chart per data set and task. The numbers are kit.leaderboard's."""
from __future__ import annotations

from pathlib import Path

from kit.leaderboard import leaderboard
from kit.report.page import Page
from kit.report.plots import metric_bars, styled

ID_COLUMNS = ("name", "kind", "data", "task", "method")


@styled
def write_leaderboard_report(oof_dir: str | Path, tune_dir: str | Path, reports_dir: str | Path) -> Path:
    table = leaderboard(oof_dir, tune_dir)
    page = Page("kit report: leaderboard", Path(reports_dir) / "leaderboard")
    if table.empty:
        page.note(f"no finished runs under {oof_dir}")
        return page.write()
    for (data, task), group in table.groupby(["data", "task"], sort=True):
        metrics = [c for c in group.columns if c not in ID_COLUMNS and group[c].notna().any()]
        page.section(f"{data} ({task}), best first")
        page.table(group[[*ID_COLUMNS, *metrics]], f"leaderboard-{data}-{task}",
                   "OOF metrics; thresholded_*: with tune/<name>/thresholds.json (in-sample), *_nested: honest")
        page.figure(metric_bars(group, "name", metrics), f"leaderboard-{data}-{task}")
    return page.write()
