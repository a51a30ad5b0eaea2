"""CSV exports opened in a spreadsheet: a cell that starts like a formula is not run."""

from __future__ import annotations

# What makes Excel, LibreOffice or Google Sheets read a cell as a formula (OWASP's list).
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A text cell a spreadsheet will not run as a formula: one that starts like a formula
    gets a leading apostrophe; other values as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_LEADS):
        return "'" + value
    return value
