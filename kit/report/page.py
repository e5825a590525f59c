"""The report page: one self-contained `index.html` (every figure embedded as a base64 PNG, no external
resource, opens offline from disk) with the same PNGs written beside it.

Table cells are formatted from the numbers the caller read from the run's files (scores.json,
thresholds.json, ...), four decimals for floats, so the page shows exactly those values rounded.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from kit.report.plots import DPI, close
from kit.runs import atomic_write

STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0;font-size:13px}th,td{border:1px solid #ccc;padding:2px 6px;
text-align:right}th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}
.note{color:#555;font-size:13px}h2{border-bottom:1px solid #ddd;margin-top:1.6em}"""


def format_value(value) -> str:
    """Floats with 4 decimals, ints as ints, missing values as 'n/a', anything else as text."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    return str(value)


def save_png(fig, path: str | Path, photos: bool) -> None:
    # the figures use constrained layout, so no bbox_inches="tight" (it would draw everything twice)
    if not photos:
        fig.savefig(path, format="png", dpi=DPI)
        return
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    Image.open(buffer).convert("RGB").quantize(256).save(path, format="png", optimize=True)


class Page:
    """Collects sections, notes, tables and figures in order; `write()` saves index.html atomically and
    removes PNGs of an earlier report of the same name that this one no longer draws (a report is a view
    of the files under oof/ and tune/, rewritten on every call)."""

    def __init__(self, title: str, folder: str | Path):
        self.title, self.folder = title, Path(folder)
        self.parts: list[str] = []
        self.pngs: list[Path] = []
        self.folder.mkdir(parents=True, exist_ok=True)

    def section(self, heading: str) -> None:
        self.parts.append(f"<h2>{html.escape(heading)}</h2>")

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{html.escape(text)}</p>')

    def table(self, frame: pd.DataFrame, table_id: str, caption: str | None = None) -> None:
        """`frame` as an HTML table with id `table_id` (its index is dropped: put labels in a column)."""
        text = frame.map(format_value) if len(frame) else frame
        markup = text.to_html(index=False, table_id=table_id, escape=True, border=0)
        if caption:
            markup = markup.replace(">", f"><caption>{html.escape(caption)}</caption>", 1)
        self.parts.append(markup)

    def figure(self, fig, name: str, caption: str | None = None, photos: bool = False) -> Path:
        """Save `fig` as `<folder>/<name>.png`, close it, and embed the same bytes in the page. `photos`:
        an adaptive 256-colour palette, which halves a gallery of photos at no visible cost."""
        path = self.folder / f"{name}.png"
        atomic_write(path, lambda tmp: save_png(fig, tmp, photos))
        close(fig)
        self.pngs.append(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        alt = html.escape(caption or name)
        self.parts.append(f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
                          + (f"<figcaption class=\"note\">{alt}</figcaption>" if caption else "") + "</figure>")
        return path

    def write(self) -> Path:
        body = "\n".join(self.parts)
        title = html.escape(self.title)
        text = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title><style>{STYLE}</style>"
                f"</head>\n<body><h1>{title}</h1>\n{body}\n</body></html>\n")
        index = atomic_write(self.folder / "index.html", lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
        for stale in set(self.folder.glob("*.png")) - set(self.pngs):
            stale.unlink()
        return index
