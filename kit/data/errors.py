"""The error every data check raises, and how it lists the offending ids."""
from __future__ import annotations


class DataError(ValueError):
    """Bad competition data; the message names the file and the offending ids, rows or files."""


def examples(items, limit: int = 10) -> str:
    """At most `limit` items as plain strings (numpy scalars would print as np.str_(...)), and the count."""
    items = [str(i) for i in items]
    more = f" ... ({len(items)} in all)" if len(items) > limit else f" ({len(items)})"
    return f"{items[:limit]}{more}"
