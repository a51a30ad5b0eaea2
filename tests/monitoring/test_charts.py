"""The monitoring page's charts: every series is named in full in the legend."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from monitoring import charts


def test_the_legend_names_every_series_in_full_however_many_and_long():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    names = [f"days_since_last_visit_of_branch_{number:02d} (1.1.0-rc.1)" for number in range(14)]
    series = {name: [(start + timedelta(minutes=5 * i), float(i * n)) for i in range(3)]
              for n, name in enumerate(names)}
    html = charts.line_chart(series, title="Drift per feature")
    legend = re.search(r'<ul class="chart-legend".*?</ul>', html).group(0)
    assert re.findall(r"</span>(.*?)</li>", legend) == names
    assert "</svg>" in html.split('<ul class="chart-legend"')[0]  # below the drawing


def test_a_label_is_escaped():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    html = charts.line_chart({"<b>x</b>": [(at, 1.0)]}, title="t")
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
