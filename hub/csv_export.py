"""CSV written by the hub for people to open in a spreadsheet.

The hub has no CSV or XLSX export yet (points of interest are imported from CSV, never
exported); this is the one writer any export must use. A text cell that starts with ``=``,
``+``, ``-``, ``@``, a tab or a carriage return is a formula to Excel, LibreOffice and Google
Sheets (``=cmd|' /C calc'!A0`` runs a program on some): such cells get a leading apostrophe,
which the spreadsheet shows as text (OWASP "CSV injection"). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | bool | None


def safe_cell(value: Cell) -> str | int | float | bool:
    """A cell value that a spreadsheet cannot evaluate as a formula."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def write_csv(columns: Sequence[str], rows: Iterable[Mapping[str, Cell]]) -> str:
    """``rows`` as CSV text with a header line; every cell neutralised with :func:`safe_cell`."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
    return out.getvalue()
