"""An alert's evidence as tables, for its admin page (the raw JSON stays below them).

Evidence is nested JSON whose shape depends on the rule (monitoring.services.passes._measure): the window and
threshold, then per version a row count and the figures that breached. A mapping whose values
are flat mappings, under `features` or `versions`, becomes a table with a row per feature or
version and a column per figure; any other mapping a two-column table; nested values nest.
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

ROWS_UNDER = ("features", "versions")
# The drift figures a reader looks at first, in this order; other numbers follow.
FIRST_COLUMNS = ("kind", "n", "psi", "ks", "ks_pvalue", "js", "chi2", "chi2_pvalue", "mean",
                 "reference_mean", "std", "reference_std", "missing", "unseen")


def _scalar(value) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        shown = ", ".join(_number(item) for item in value[:8])
        return shown + (f", … ({len(value)} in all)" if len(value) > 8 else "")
    return str(value)


def _leaf(value) -> bool:
    """A value shown in one cell, or left to the raw JSON (a list, a mapping of numbers)."""
    if isinstance(value, list):
        return all(_scalar(item) for item in value)
    if isinstance(value, dict):
        return all(_scalar(item) for item in value.values())
    return _scalar(value)


def _columns(mapping: dict) -> list[str] | None:
    """The columns of a mapping of flat mappings (a row each: features, versions), or None
    if it is not one. Only numbers and words get a column."""
    if not mapping or not all(isinstance(row, dict) and all(_leaf(v) for v in row.values())
                              for row in mapping.values()):
        return None
    seen = {key for row in mapping.values() for key, value in row.items() if _scalar(value)}
    if not seen:
        return None
    return [*(key for key in FIRST_COLUMNS if key in seen),
            *sorted(seen - set(FIRST_COLUMNS))]


def evidence_html(value, *, under: str = "") -> SafeString | str:
    """`value` (an alert's evidence, or a part of it found under the key `under`) as HTML."""
    if not isinstance(value, dict):
        return _number(value)
    columns = _columns(value) if under in ROWS_UNDER else None
    if columns is None:
        return format_html('<table class="evidence"><tbody>{}</tbody></table>',
                           format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", (
                               (key, evidence_html(item, under=key))
                               for key, item in value.items())))
    return format_html(
        '<table class="evidence"><thead><tr><th></th>{}</tr></thead><tbody>{}</tbody></table>',
        format_html_join("", "<th>{}</th>", ((column,) for column in columns)),
        format_html_join("", "<tr><th>{}</th>{}</tr>", (
            (key, format_html_join("", "<td>{}</td>", (
                (_number(row.get(column)),) for column in columns)))
            for key, row in value.items())))
