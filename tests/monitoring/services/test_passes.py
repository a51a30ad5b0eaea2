"""Monitoring with generated data: drift that is there raises one alert naming the feature;
drift that is not raises none; alerts clear, resolve and notify exactly once."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from core.models import AuditEvent
from governance import services
from monitoring import services as monitoring_services
from monitoring.models import Alert, AlertRule, MonitoringRun
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


def test_the_alert_is_updated_not_duplicated_and_resolves_when_it_clears(monitored):
    start = timezone.now() - timedelta(days=1)
    hours = iter(range(1, 100))

    def pass_(**shape):
        end = start + timedelta(hours=next(hours))
        log_window(monitored, end=end, seed=end.hour * 7 + end.day, **shape)
        return monitoring_services.monitoring_pass(model=monitored.model, now=end)

    pass_(shift_tenure=1.0)
    pass_(shift_tenure=1.2)
    (alert,) = _alerts()
    assert (alert.count, alert.status) == (2, "open")
    for _ in range(2):
        pass_()
    alert.refresh_from_db()
    assert (alert.status, alert.clear_runs) == ("open", 2)
    pass_()  # the third clear pass in a row: the rule's resolve_after_runs
    alert.refresh_from_db()
    assert alert.status == "resolved"
    assert alert.resolved_by.username == "system"
    assert "clear for 3 passes" in alert.resolution
    actions = list(AuditEvent.objects.filter(action__startswith="alert.").order_by("seq")
                   .values_list("action", flat=True))
    assert actions == ["alert.opened", "alert.resolved"]
    pass_(shift_tenure=1.0)  # it comes back: a new alert, not the old one reopened
    assert [a.status for a in _alerts()] == ["resolved", "open"]


def test_a_pass_with_no_traffic_records_no_data_not_an_error_or_an_alert(monitored):
    (run,) = monitoring_services.monitoring_pass(model=monitored.model)
    assert run.status == "no_data"
    assert run.summary == "no traffic in the window"
    assert run.figures["60"]["drift"] == {"skipped": "no data", "n": 0}
    assert not Alert.objects.exists()


def test_no_data_neither_clears_nor_raises_an_open_alert(monitored):
    end = timezone.now() - timedelta(hours=5)
    log_window(monitored, end=end, seed=3, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=end)
    for hours in range(1, 5):  # four quiet hours
        monitoring_services.monitoring_pass(model=monitored.model, now=end + timedelta(hours=hours))
    (alert,) = _alerts()
    assert (alert.status, alert.clear_runs, alert.count) == ("open", 0, 1)


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


def test_a_models_own_rule_replaces_the_default_and_can_switch_it_off(monitored, admin_user):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.ensure_default_rules()
    monitoring_services.alert_rule_save(actor=admin_user, model=monitored.model, metric="feature_drift",
                             statistic="psi", threshold=0.2, enabled=False)
    assert monitoring_services.monitoring_pass(model=monitored.model, now=now)[0].status == "ok"
    assert not Alert.objects.exists()
    event = AuditEvent.objects.get(action="alert_rule.created")
    assert json.loads(event.after)["enabled"] is False


def test_the_monitor_command_prints_the_figures(monitored, capsys):
    from django.core.management import call_command

    log_window(monitored, end=timezone.now(), seed=1, shift_tenure=1.0)
    call_command("monitor", "--model", "loans")
    out = capsys.readouterr().out
    assert "loans 1.0.0 (production): alerting" in out
    assert "tenure" in out and "psi" in out
    assert MonitoringRun.objects.count() == 1


def test_a_rule_that_makes_no_sense_is_refused_and_nothing_is_saved(monitored, admin_user):
    from core.errors import ApplicationError

    before = AlertRule.objects.count()
    bad = [dict(metric="feature_drift", statistic="median", threshold=0.2),
           dict(metric="latency_p99", statistic="psi", threshold=200),
           dict(metric="error_rate", threshold=-1),
           dict(metric="made_up", threshold=1)]
    for spec in bad:
        with pytest.raises(ApplicationError):
            monitoring_services.alert_rule_save(actor=admin_user, model=monitored.model, **spec)
    assert AlertRule.objects.count() == before


# --- notifications ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_fails_twice_then_succeeds_gets_the_alert_exactly_once(
    monitored, admin_user, receiver, settings, mailoutbox
):
    import hashlib
    import hmac

    from monitoring import tasks
    from monitoring.models import AlertDelivery

    url, received = receiver
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # the receiver is on loopback
    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0, 0, 0]
    monitored.model.owner.email = "dana@library.example"
    monitored.model.owner.save()
    monitoring_services.webhook_save(actor=admin_user, name="on-call", url=url, secret="s3cret")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)  # first attempt, on commit
    webhook = AlertDelivery.objects.get(channel="webhook")
    assert (webhook.status, webhook.attempts, webhook.response_status) == ("retrying", 1, 503)
    for _ in range(5):  # the periodic sweep, more often than needed
        tasks.deliveries_due()
    webhook.refresh_from_db()
    assert (webhook.status, webhook.attempts, webhook.response_status) == ("sent", 3, 200)
    assert [status for status, _, _ in received] == [503, 503, 200]  # accepted once, only
    _status, headers, body = received[-1]
    expected = hmac.new(b"s3cret", headers["X-Mgov-Timestamp"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    assert headers["X-Mgov-Signature"] == f"sha256={expected}"
    assert headers["X-Mgov-Delivery"] == str(webhook.pk)
    payload = json.loads(body)
    assert payload["event"] == "alert.opened"
    assert payload["alert"]["model"] == "loans" and "tenure" in payload["alert"]["title"]
    assert set(payload["alert"]["evidence"]["versions"]["1.0.0"]["features"]) == {"tenure"}
    # The owner's e-mail went out once, on the first try.
    (email,) = [d for d in AlertDelivery.objects.filter(channel="email")]
    assert email.status == "sent"
    assert len(mailoutbox) == 1 and "tenure" in mailoutbox[0].subject
    assert mailoutbox[0].to == ["dana@library.example"]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_never_arrives_is_marked_failed_and_audited(monitored, admin_user,
                                                                    settings):
    from monitoring import tasks
    from monitoring.models import AlertDelivery

    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0, 0]
    settings.WEBHOOK_TIMEOUT_SECONDS = 1
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    monitoring_services.webhook_save(actor=admin_user, name="gone", url="http://127.0.0.1:9/nothing",
                          secret="x")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    for _ in range(4):
        tasks.deliveries_due()
    delivery = AlertDelivery.objects.get(channel="webhook")
    assert (delivery.status, delivery.attempts) == ("failed", 3)
    assert "no answer" in delivery.last_error
    assert AuditEvent.objects.filter(action="alert.delivery_failed").count() == 1


# --- robustness -------------------------------------------------------------------------------


def test_sampled_logs_that_kept_no_rows_do_not_upset_a_pass(monitored, settings):
    """A text feature, and a sampling rate that keeps no row of some requests."""
    from predictions import logs
    from predictions.models import PredictionLog

    settings.PREDICTION_LOG_SAMPLE_RATE = 0.3
    rng = np.random.default_rng(7)
    for i in range(300):
        matrix = np.array([[float(rng.normal(24, 6)), 3.0, 1.0, "north"]], dtype=object)
        logs.record(request_id=f"q{i}", model_id=monitored.model_id, version_id=monitored.pk,
                    route="production", user=monitored.created_by, protocol="rest",
                    matrix=matrix, predictions=np.array([1]), probabilities=None,
                    latency_ms=2.0)
    assert logs.flush() == 300
    kept = sum(len(log.inputs) for log in PredictionLog.objects.all())
    assert 0 < kept < 300
    assert any(not log.inputs for log in PredictionLog.objects.all())  # some kept none
    (run,) = monitoring_services.monitoring_pass(model=monitored.model)
    assert run.status in ("ok", "alerting")
    assert run.figures["60"]["drift"]["n"] == kept
    assert run.figures["60"]["drift"]["features"]["branch"]["n"] == kept


def test_a_regressor_given_a_label_as_its_outcome_counts_it_unusable(data_scientist):
    from monitoring import statistics as monitoring

    figures = monitoring.regression_performance(["3.5", "oops", 4, None], [3.0, 2.0, 5.0, 1.0])
    assert (figures["n"], figures["unusable"]) == (2, 2)
    assert figures["mae"] == pytest.approx(0.75)


def test_auc_takes_the_greater_numeric_class_as_positive():
    from monitoring import statistics as monitoring

    actual = [9, 10, 10, 9]
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])  # columns: 9, 10
    figures = monitoring.classification_performance(actual, [9, 10, 10, 9], scores)
    assert figures["auc_roc"] == 1.0


def test_an_alert_whose_rule_was_switched_off_is_resolved_by_the_next_pass(monitored,
                                                                           admin_user):
    end = timezone.now() - timedelta(hours=2)
    log_window(monitored, end=end, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=end)
    (alert,) = _alerts()
    monitoring_services.alert_rule_save(actor=admin_user, rule=alert.rule, enabled=False)
    monitoring_services.monitoring_pass(model=monitored.model, now=end + timedelta(hours=1))
    alert.refresh_from_db()
    assert alert.status == "resolved" and "no longer applies" in alert.resolution


def test_an_alert_of_a_model_that_stopped_serving_is_resolved(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    helpers_force_archive(monitored)
    assert monitored.model_id in monitoring_services.models_to_monitor()  # its alert keeps it watched
    assert monitoring_services.monitoring_pass(model=monitored.model) == []
    assert Alert.objects.get().status == "resolved"
    assert monitored.model_id not in monitoring_services.models_to_monitor()


def helpers_force_archive(version):
    from tests import helpers

    services.version_force_stage(version=version, to_stage="archived",
                                 actor=helpers.governance_admin(), reason="retired")


@pytest.mark.django_db(transaction=True)
def test_a_delivery_that_raises_something_unexpected_is_retried_then_failed(
    monitored, admin_user, settings
):
    from monitoring import tasks
    from monitoring.models import AlertDelivery

    settings.ALERT_DELIVERY_BACKOFF_SECONDS = [0]
    # An address saved around the form's checks: sending raises BadHeaderError (a ValueError).
    monitored.model.owner.email = "dana@library.example\nBcc: eve@example.org"
    monitored.model.owner.save()
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    tasks.deliveries_due()
    delivery = AlertDelivery.objects.get(channel="email")
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert "BadHeaderError" in delivery.last_error


def test_two_webhooks_with_the_same_url_each_get_their_delivery(monitored, admin_user):
    from monitoring.models import AlertDelivery

    first = monitoring_services.webhook_save(actor=admin_user, name="on-call", url="https://hooks.example/a",
                                  secret="one")
    second = monitoring_services.webhook_save(actor=admin_user, name="audit", url="https://hooks.example/a",
                                   secret="two")
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    (run,) = monitoring_services.monitoring_pass(model=monitored.model, now=now)
    assert run.status == "alerting"
    assert sorted(AlertDelivery.objects.filter(channel="webhook").values_list(
        "webhook", flat=True)) == [first.pk, second.pk]
