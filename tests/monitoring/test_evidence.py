"""An alert's evidence as tables (monitoring.evidence)."""

from __future__ import annotations

import re

from monitoring.evidence import evidence_html


def _rows(html: str) -> list[list[str]]:
    """The cells of each innermost table row."""
    return [re.findall(r"<t[hd]>(.*?)</t[hd]>", row)
            for row in re.findall(r"<tr>((?:(?!<tr>).)*?)</tr>", html)]


def test_performance_evidence_is_a_row_per_version_and_a_column_per_figure():
    html = str(evidence_html({"window_minutes": 1440, "versions": {
        "1.0.0": {"n": 120, "metric": "accuracy", "live": 0.71234567, "registered": 0.82},
        "1.1.0-rc.1": {"n": 80, "metric": "accuracy", "live": 0.6, "registered": 0.8}}}))
    assert ["", "n", "live", "metric", "registered"] in _rows(html)
    assert ["1.0.0", "120", "0.7123", "accuracy", "0.82"] in _rows(html)
    assert ["1.1.0-rc.1", "80", "0.6", "accuracy", "0.8"] in _rows(html)


def test_drift_evidence_puts_the_effect_sizes_first_and_leaves_shares_to_the_json():
    html = str(evidence_html({"versions": {"1.0.0": {"n": 600, "features": {
        "branch": {"kind": "categorical", "n": 600, "psi": 0.41, "js": 0.2,
                   "shares": {"north": 0.9}, "reference_shares": {"north": 0.5}}}}}}))
    assert ["", "kind", "n", "psi", "js"] in _rows(html)
    assert ["branch", "categorical", "600", "0.41", "0.2"] in _rows(html)
    assert "north" not in html


def test_integrity_evidence_names_the_file_and_text_is_escaped():
    html = str(evidence_html({"versions": {"1.0.0": "model.joblib: sha256 <b>differs</b>"}}))
    assert ["1.0.0", "model.joblib: sha256 &lt;b&gt;differs&lt;/b&gt;"] in _rows(html)
