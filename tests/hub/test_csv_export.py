"""hub.csv_export: no cell a spreadsheet would run as a formula (CSV injection)."""

from __future__ import annotations

import csv
import io

import pytest

from hub.csv_export import FORMULA_PREFIXES, safe_cell, write_csv


@pytest.mark.parametrize(
    "text",
    ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", '=HYPERLINK("x")'],
)
def test_formula_cells_become_text(text: str) -> None:
    out = safe_cell(text)
    assert out == "'" + text
    assert not str(out).startswith(FORMULA_PREFIXES)


def test_plain_values_and_numbers_are_kept() -> None:
    assert safe_cell("Shelter A") == "Shelter A"
    assert safe_cell(-5) == -5 and safe_cell(1.5) == 1.5
    assert safe_cell(None) == ""


def test_written_csv_reads_back_neutralised() -> None:
    text = write_csv(["id", "name"], [{"id": "p1", "name": "=cmd|' /C calc'!A0"}, {"id": "p2"}])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["id", "name"], ["p1", "'=cmd|' /C calc'!A0"], ["p2", ""]]
    assert not any(cell.startswith(FORMULA_PREFIXES) for row in rows for cell in row)
