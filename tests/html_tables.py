"""Reading a kit.report page back in tests: its tables by id and its images, with the standard library's
HTML parser (no lxml needed)."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

PNG_PREFIX = "data:image/png;base64,"


class PageParser(HTMLParser):
    """Tables by id (header row first, every cell as text) and the src of every img."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.links: list[str] = []
        self._table = self._row = self._cell = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [v for k, v in attrs.items() if k in ("src", "href") and v]
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
            self._table.append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> PageParser:
    parser = PageParser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def records(parser: PageParser, table_id: str) -> list[dict[str, str]]:
    header, *rows = parser.tables[table_id]
    return [dict(zip(header, row)) for row in rows]


def same(cell: str, value) -> bool:
    """A table cell shows the file's number rounded to 4 decimals ('n/a' for a missing one)."""
    if value is None or value != value:  # NaN
        return cell == "n/a"
    return float(cell) == round(float(value), 4)
