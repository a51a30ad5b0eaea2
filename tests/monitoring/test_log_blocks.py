"""Single-row requests stored in blocks (PREDICTION_LOG_BLOCKS) read as row-stored ones do:
the same monitoring figures, feedback joins, traces and retention, on the same traffic."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from monitoring import services as monitoring
from predictions import blocks, logs
from predictions import services as predictions
from predictions.models import Feedback, PredictionLog, PredictionLogBlock
from tests.monitoring.traffic import BRANCHES

pytestmark = pytest.mark.django_db

REQUESTS = 480
PER_FLUSH = 60  # requests the writer finds in its buffer at each flush


def _traffic(version, now, *, seed=7, spacing=69 * 60 / REQUESTS):
    """Single-row requests from 70 to 1 minutes ago (so a block straddles the window's
    start), with answers, class probabilities and latencies: what the writer is given."""
    rng = np.random.default_rng(seed)
    out = []
    for n in range(REQUESTS):
        at = now - timedelta(minutes=70) + timedelta(seconds=n * spacing)
        row = np.array([[rng.normal(30, 6), float(rng.poisson(3)), rng.exponential(2.0),
                         str(rng.choice(BRANCHES))]], dtype=object)
        score = rng.random()
        out.append(logs.Answered(
            request_id=blocks.new_request_id(at), model_id=version.model_id,
            version_id=version.pk, route="production", caller_id=None,
            caller_name="loans-service", protocol="rest", created_at=at, matrix=row,
            predictions=np.array([int(score > 0.5)]),
            probabilities=np.array([[1 - score, score]]), latency_ms=float(rng.gamma(2, 2)),
            routing_key=""))
    return out


def _log(traffic):
    for start in range(0, len(traffic), PER_FLUSH):
        for answered in traffic[start:start + PER_FLUSH]:
            logs._buffer.put(answered)
        logs.flush()


def _feedback(traffic, actor, *, every=3):
    """Outcomes for every third request, through the service (which finds the request)."""
    for n, answered in enumerate(traffic[::every]):
        predictions.feedback_record(request_id=answered.request_id,
                                    items=[{"row": 0, "actual": n % 2}], actor=actor)


def _figures(version, now):
    (run,) = monitoring.monitoring_pass(model=version.model, now=now)
    return run.figures


def _same(a, b, path="figures"):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for key in a:
            _same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        assert len(a) == len(b), path
        for n, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{path}[{n}]")
    elif isinstance(a, float) and not math.isnan(a):
        # Sums taken in another order differ in the last bits, nothing more.
        assert b == pytest.approx(a, rel=1e-9, abs=1e-12), path
    else:
        assert a == b or (a != a and b != b), path


def _both_ways(settings, version, data_scientist, *, before_pass=None):
    """The same traffic and feedback row-stored, then block-stored: both passes' figures."""
    now = timezone.now()
    traffic = _traffic(version, now)
    figures = {}
    for stored in (False, True):
        settings.PREDICTION_LOG_BLOCKS = stored
        _log(traffic)
        _feedback(traffic, data_scientist)
        if stored:  # the block path, not the row one, held the traffic
            assert not PredictionLog.objects.exists()
            # A flush's 60 requests span 8.5 minutes: two blocks each (blocks.MAX_SPAN).
            assert PredictionLogBlock.objects.count() == 2 * REQUESTS // PER_FLUSH
            assert sum(PredictionLogBlock.objects.values_list("n_requests", flat=True)) == (
                REQUESTS)
        else:
            assert PredictionLog.objects.count() == REQUESTS
        figures[stored] = _figures(version, now)
        PredictionLog.objects.all().delete()
        Feedback.objects.all().delete()
    return figures[False], figures[True]


def test_block_stored_traffic_gives_the_same_monitoring_figures_as_row_stored(
        monitored, data_scientist, settings):
    rows, stored = _both_ways(settings, monitored, data_scientist)
    window = rows[str(settings.MONITORING_WINDOW_MINUTES)]
    # The window cuts the first block: only its requests inside count.
    assert 0 < window["volume"]["requests"] < REQUESTS
    assert window["drift"]["n"] == window["volume"]["requests"]
    assert window["performance"]["n"] > 0 and "accuracy" in window["performance"]
    assert window["latency"]["n"] == window["volume"]["requests"]
    _same(rows, stored)


def test_sampled_block_stored_traffic_gives_the_same_figures_and_feedback_joins(
        monitored, data_scientist, settings):
    settings.PREDICTION_LOG_SAMPLE_RATE = 0.6
    rows, stored = _both_ways(settings, monitored, data_scientist)
    window = rows[str(settings.MONITORING_WINDOW_MINUTES)]
    assert window["drift"]["n"] < window["volume"]["requests"]  # some rows sampled away
    assert 0 < window["performance"]["n"] < window["volume"]["requests"] // 3 + 1
    _same(rows, stored)


def test_a_truncated_window_keeps_the_same_newest_rows_in_both_layouts(
        monitored, data_scientist, settings):
    settings.MONITORING_MAX_ROWS = 100
    rows, stored = _both_ways(settings, monitored, data_scientist)
    drift = rows[str(settings.MONITORING_WINDOW_MINUTES)]["drift"]
    assert (drift["n"], drift["truncated"]) == (100, True)
    _same(rows, stored)


def test_single_row_requests_share_a_block_per_flush_and_batches_stay_rows(
        monitored, settings):
    settings.PREDICTION_LOG_BLOCKS = True
    now = timezone.now()
    traffic = _traffic(monitored, now, spacing=1.0)[:PER_FLUSH]
    batch = logs.Answered(**{**traffic[0].__dict__, "request_id": "batch-1",
                             "matrix": np.concatenate([t.matrix for t in traffic[:5]]),
                             "predictions": np.array([0, 1, 0, 1, 1]),
                             "probabilities": None})
    _log([*traffic, batch])
    (block,) = PredictionLogBlock.objects.all()
    assert (block.n_requests, block.created_at, block.last_at) == (
        PER_FLUSH, traffic[0].created_at, traffic[-1].created_at)
    assert list(PredictionLog.objects.values_list("request_id", "n_rows")) == [("batch-1", 5)]
    again = blocks.requests(block)
    assert [log.request_id for log in again] == [t.request_id for t in traffic]
    assert [log.inputs[0] for log in again] == [t.matrix[0].tolist() for t in traffic]
    assert [log.latency_ms for log in again] == [round(t.latency_ms, 3) for t in traffic]


def test_feedback_and_the_trace_find_a_block_stored_request_as_a_row_stored_one(
        monitored, data_scientist, settings, api):
    now = timezone.now()
    one = _traffic(monitored, now)[-1]
    traces = {}
    for stored in (False, True):
        settings.PREDICTION_LOG_BLOCKS = stored
        _log([one])
        client = api(data_scientist)
        response = client.post(f"/api/v1/predictions/{one.request_id}/feedback/",
                               {"feedback": [{"row": 0, "actual": 1}]}, format="json")
        assert response.status_code == 201, response.json()
        again = client.post(f"/api/v1/predictions/{one.request_id}/feedback/",
                            {"feedback": [{"row": 1, "actual": 1}]}, format="json")
        assert again.status_code == 400 and "row must be 0..0" in str(again.json())
        trace = client.get(f"/api/v1/predictions/{one.request_id}/trace")
        assert trace.status_code == 200, trace.json()
        traces[stored] = trace.json()
        PredictionLog.objects.all().delete()
        Feedback.objects.all().delete()
    assert PredictionLogBlock.objects.count() == 1
    block = PredictionLogBlock.objects.get()
    row, inside = traces[False]["request"], traces[True]["request"]
    assert inside["admin_url"] == f"/admin/predictions/predictionlogblock/{block.pk}/change/"
    assert inside["block_id"] == block.pk and row["block_id"] is None
    for key in ("id", "admin_url", "block_id"):
        row.pop(key), inside.pop(key)
    assert inside == row
    assert traces[True]["feedback"][0]["actual"] == 1
    # An unknown id, block-shaped or not, is still a 404 naming the request.
    missing = blocks.new_request_id(now)
    response = api(data_scientist).post(f"/api/v1/predictions/{missing}/feedback/",
                                        {"feedback": [{"row": 0, "actual": 1}]}, format="json")
    assert response.status_code == 404


def test_retention_deletes_blocks_past_the_cutoff_and_keeps_those_with_recent_feedback(
        monitored, data_scientist, settings):
    settings.PREDICTION_LOG_BLOCKS = True
    settings.PREDICTION_LOG_RETENTION_DAYS = 30
    now = timezone.now()

    def block_at(days_ago, n=3):
        start = now - timedelta(days=days_ago)
        traffic = _traffic(monitored, start)[:n]
        for t in traffic:  # within seconds of each other: one block
            t.created_at = start + timedelta(seconds=traffic.index(t))
            t.request_id = blocks.new_request_id(t.created_at)
        _log(traffic)
        return PredictionLogBlock.objects.latest("id"), traffic

    old, _ = block_at(40)
    answered_old, answered = block_at(31)
    recent, _ = block_at(2)
    # A request 31 days old with feedback, reachable by a 60-day window rule: kept.
    settings.MONITORING_WINDOW_MINUTES = 60 * 24 * 60
    predictions.feedback_record(request_id=answered[1].request_id,
                                items=[{"row": 0, "actual": 1}], actor=data_scientist)
    counts = monitoring.prediction_logs_prune(now=now, chunk_size=1)
    assert set(PredictionLogBlock.objects.values_list("id", flat=True)) == {
        answered_old.pk, recent.pk}
    assert (counts["prediction_logs"], counts["kept_for_feedback"],
            counts["prediction_log_blocks"]) == (3, 3, 1)
    assert Feedback.objects.count() == 1
    # Without a window that reaches it, it goes too.
    settings.MONITORING_WINDOW_MINUTES = 60
    monitoring.prediction_logs_prune(now=now)
    assert list(PredictionLogBlock.objects.values_list("id", flat=True)) == [recent.pk]


def test_the_admin_lists_a_blocks_requests_and_finds_it_by_request_id(
        monitored, admin_user, client, settings):
    settings.PREDICTION_LOG_BLOCKS = True
    traffic = _traffic(monitored, timezone.now())[:4]
    _log(traffic)
    block = PredictionLogBlock.objects.get()
    client.force_login(admin_user)
    found = client.get("/admin/predictions/predictionlogblock/",
                       {"q": traffic[2].request_id}).content.decode()
    assert f"/admin/predictions/predictionlogblock/{block.pk}/change/" in found
    page = client.get(f"/admin/predictions/predictionlogblock/{block.pk}/change/")
    assert page.status_code == 200
    for t in traffic:
        assert t.request_id in page.content.decode()
