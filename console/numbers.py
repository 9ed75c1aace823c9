"""Numbers as the console shows them, in one style: the run's closing line and `tokenmill stats` print the same
figures through these, so the same run reads the same in both (they differed: "1234 tokens in 5.3 s" against
"1,234 tokens (5.3 s wall)").

Counts with thousands separators; seconds with one decimal and " s"; columns as wide as their widest cell, so
a long stage name (language_precheck) or a large count widens its column instead of shifting the rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def count(n: int) -> str:
    """12345 -> '12,345'."""
    return f"{n:,}"


def secs(seconds: float) -> str:
    """12.345 -> '12.3 s'."""
    return f"{seconds:,.1f} s"


def run_summary(stats: Mapping[str, Any]) -> str:
    """A run's headline from its stats.json: '18 records, 8 kept, 1,234 tokens in 17.8 s'."""
    return (f"{count(stats['records'])} records, {count(stats['kept'])} kept, {count(stats['tokens'])} tokens "
            f"in {secs(stats.get('wall_seconds', 0))}")


def table(header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> list[str]:
    """Lines of a table whose every column is as wide as its widest cell (header included); `right` says which
    columns are right-aligned (numbers). The last column is not padded."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = []
    for row in (header, *rows):
        cells = [str(cell).rjust(w) if r else str(cell).ljust(w) for cell, w, r in zip(row, widths, right, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return lines
