"""What the admin's monitoring page of a model shows: charts over the recent passes."""

from __future__ import annotations

from django.conf import settings

from monitoring import charts
from monitoring.models import ACTIVE_ALERT, AlertMetric, MonitoringRun
from monitoring.services import effective_rules

PASSES = 300  # about a day at one pass every five minutes


def _series(runs, pick) -> dict[str, list]:
    """{label: [(time, value)]} from each run's figures of the page's window."""
    out: dict[str, list] = {}
    window = str(settings.MONITORING_WINDOW_MINUTES)
    for run in runs:
        figures = run.figures.get(window) or {}
        for label, value in pick(run, figures):
            out.setdefault(label, []).append((run.created_at, value))
    return out


def _threshold(rules, metric: str, statistic: str = ""):
    for rule in rules:
        if rule.metric == metric and (not statistic or rule.statistic == statistic):
            return rule
    return None


def build(model) -> dict:
    runs = list(MonitoringRun.objects.filter(model=model).select_related("version")
                .order_by("-created_at")[:PASSES])[::-1]
    rules = effective_rules(model)
    drift_rule = _threshold(rules, AlertMetric.FEATURE_DRIFT)
    statistic = drift_rule.statistic if drift_rule else "psi"
    performance_rule = _threshold(rules, AlertMetric.PERFORMANCE_DROP)
    metric = performance_rule.statistic if performance_rule else "accuracy"
    latency_rule = _threshold(rules, AlertMetric.LATENCY_P99)
    several = len({(run.version_id, run.route) for run in runs}) > 1

    def tag(run, label):
        return f"{label} ({run.version.version})" if several else label

    def drift(run, figures):
        features = (figures.get("drift") or {}).get("features") or {}
        for name, f in features.items():
            if f and f.get(statistic) is not None:
                yield tag(run, name), f[statistic]

    def performance(run, figures):
        live = figures.get("performance") or {}
        if live.get(metric) is not None:
            yield tag(run, f"live {metric}"), live[metric]
            registered = (live.get("registered") or {}).get(metric)
            if registered is not None:
                yield tag(run, f"registered {metric}"), registered

    def latency(run, figures):
        values = figures.get("latency") or {}
        if values.get("p99_ms") is not None:
            yield tag(run, "p50"), values["p50_ms"]
            yield tag(run, "p99"), values["p99_ms"]

    def volume(run, figures):
        counts = figures.get("volume") or {}
        yield tag(run, "answered"), counts.get("requests", 0)
        yield tag(run, "failed"), counts.get("failed", 0)
        yield tag(run, "rejected"), counts.get("rejected", 0)

    window = settings.MONITORING_WINDOW_MINUTES
    return {
        "runs": runs[::-1][:20],
        "alerts": model.alerts.filter(ACTIVE_ALERT).select_related("rule").order_by("-last_seen"),
        "rules": rules,
        "window": window,
        "charts": [
            charts.line_chart(_series(runs, drift),
                              title=f"Drift per feature ({statistic}, last {window} min)",
                              threshold=drift_rule.threshold if drift_rule else None),
            charts.line_chart(_series(runs, performance),
                              title=f"Live {metric} from feedback (last {window} min)"),
            charts.line_chart(_series(runs, latency), title="Latency (ms)", unit=" ms",
                              threshold=latency_rule.threshold if latency_rule else None),
            charts.line_chart(_series(runs, volume),
                              title=f"Requests per {window}-minute window"),
        ],
    }
