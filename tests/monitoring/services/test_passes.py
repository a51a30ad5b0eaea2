"""Monitoring passes over generated traffic: drift that is there raises one alert naming the
feature; drift that is not raises none; performance, latency and errors are measured."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from core.models import AuditEvent
from monitoring import services as monitoring_services
from monitoring.models import Alert
from predictions.models import Feedback, PredictionError
from tests.monitoring.traffic import WINDOW_ROWS, log_window


def _alerts(**filters):
    return list(Alert.objects.filter(**filters).order_by("id"))


def test_a_shifted_feature_raises_exactly_one_alert_naming_it(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    runs = monitoring_services.monitoring_pass(model=monitored.model, now=now)
    assert [(r.version.version, r.route, r.status) for r in runs] == [
        ("1.0.0", "production", "alerting")]
    alerts = _alerts()
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.rule.metric, alert.rule.statistic, alert.status) == (
        "feature_drift", "psi", "open")
    assert "tenure" in alert.title
    named = alert.evidence["versions"]["1.0.0"]["features"]
    assert set(named) == {"tenure"}
    assert named["tenure"]["psi"] > 0.2 and named["tenure"]["ks"] > 0.3
    assert named["tenure"]["mean"] > named["tenure"]["reference_mean"] + 4
    assert alert.evidence["window_minutes"] == 60 and alert.evidence["threshold"] == 0.2
    figures = runs[0].figures["60"]["drift"]["features"]
    assert figures["branch"]["psi"] < 0.01  # the categorical one did not move
    assert AuditEvent.objects.filter(action="alert.opened").count() == 1


def test_unshifted_windows_raise_no_alert_false_alarm_rate_over_20_seeds(monitored):
    start = timezone.now() - timedelta(days=2)
    fired = 0
    worst = 0.0
    for seed in range(20):
        end = start + timedelta(hours=seed + 1)
        log_window(monitored, end=end, seed=100 + seed)
        (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=end)
        assert run.status in ("ok", "alerting")
        fired += run.status == "alerting"
        worst = max(worst, max(f["psi"] for f in run.figures["60"]["drift"]["features"]
                               .values()))
    assert fired == 0, f"{fired} of 20 unshifted windows raised an alert"
    assert not Alert.objects.exists()
    assert worst < 0.05  # far below the 0.2 threshold: the default is not on a knife edge


def test_a_pass_with_no_traffic_records_no_data_not_an_error_or_an_alert(monitored):
    (run,) = monitoring_services.monitoring_pass(model=monitored.model)
    assert run.status == "no_data"
    assert run.summary == "no traffic in the window"
    assert run.figures["60"]["drift"] == {"skipped": "no data", "n": 0}
    assert not Alert.objects.exists()


def test_a_categorical_shift_is_seen_by_psi_js_and_chi_square(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=5, branch_p=(0.1, 0.1, 0.8))
    (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=now)
    branch = run.figures["60"]["drift"]["features"]["branch"]
    assert branch["psi"] > 0.5 and branch["js"] > 0.3 and branch["chi2_pvalue"] < 1e-6
    (alert,) = _alerts()
    assert set(alert.evidence["versions"]["1.0.0"]["features"]) == {"branch"}


def test_live_accuracy_below_the_registered_one_raises_a_critical_alert(monitored):
    now = timezone.now()
    entries = log_window(monitored, end=now, seed=9)
    feedback = []
    coin = np.random.default_rng(99)
    for entry in entries:  # ground truth: only 60 % of the answers were right
        for row, predicted in enumerate(entry.outputs):
            right = coin.random() < 0.6
            feedback.append(Feedback(request_id=entry.request_id, row_index=row,
                                     actual=predicted if right else 1 - predicted,
                                     created_by=monitored.created_by))
    Feedback.objects.bulk_create(feedback)
    (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=now)
    performance = run.figures["1440"]["performance"]
    assert performance["n"] == WINDOW_ROWS
    assert 0.55 < performance["accuracy"] < 0.65
    assert performance["registered"] == {"accuracy": 0.85}
    (alert,) = _alerts(rule__metric="performance_drop")
    assert alert.severity == "critical"
    assert alert.evidence["versions"]["1.0.0"]["metric"] == "accuracy"
    assert alert.value == pytest.approx(0.85 - performance["accuracy"])


def test_slow_answers_and_failures_raise_latency_and_error_rate_alerts(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=11, rows=500, per_request=5, latency_ms=350.0)
    PredictionError.objects.bulk_create(
        PredictionError(request_id=f"e{i}", model=monitored.model, version=monitored,
                        kind="failed", status_code=500, message="ValueError: boom",
                        created_at=now - timedelta(minutes=5)) for i in range(5))
    (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=now)
    assert run.figures["60"]["latency"]["p99_ms"] == 350.0
    assert run.figures["60"]["errors"]["error_rate"] == pytest.approx(5 / 105)
    metrics = {a.rule.metric for a in _alerts()}
    assert metrics == {"latency_p99", "error_rate"}


@pytest.mark.parametrize("in_blocks", [False, True], ids=["rows", "blocks"])
def test_sampled_logs_that_kept_no_rows_do_not_upset_a_pass(monitored, settings, in_blocks):
    """A text feature, and a sampling rate that keeps no row of some requests."""
    from predictions import blocks, logs
    from predictions.models import PredictionLog, PredictionLogBlock

    settings.PREDICTION_LOG_SAMPLE_RATE = 0.3
    settings.PREDICTION_LOG_BLOCKS = in_blocks
    rng = np.random.default_rng(7)
    for i in range(300):
        matrix = np.array([[float(rng.normal(24, 6)), 3.0, 1.0, "north"]], dtype=object)
        logs.record(request_id=f"q{i}", model_id=monitored.model_id, version_id=monitored.pk,
                    route="production", user=monitored.created_by, protocol="rest",
                    matrix=matrix, predictions=np.array([1]), probabilities=None,
                    latency_ms=2.0)
    assert logs.flush() == 300
    flags = [*(bool(log.inputs) for log in PredictionLog.objects.all()),
             *(flag for block in PredictionLogBlock.objects.all()
               for flag in blocks.meta(block)["kept"].astype(bool))]
    kept = sum(flags)
    assert len(flags) == 300 and 0 < kept < 300  # some kept none
    assert PredictionLogBlock.objects.exists() is in_blocks
    (run,) = monitoring_services.monitoring_pass(model=monitored.model)
    assert run.status in ("ok", "alerting")
    assert run.figures["60"]["drift"]["n"] == kept
    assert run.figures["60"]["drift"]["features"]["branch"]["n"] == kept
