"""A model's monitoring (passes and active alerts) over the REST API."""

from __future__ import annotations

from django.utils import timezone

from monitoring import services as monitoring_services
from monitoring.models import Alert
from tests.monitoring.traffic import log_window


def _open_alert(monitored):
    now = timezone.now()
    log_window(monitored, end=now, seed=1, shift_tenure=1.0)
    monitoring_services.monitoring_pass(model=monitored.model, now=now)
    return Alert.objects.get()


def test_the_monitoring_endpoint_shows_passes_and_active_alerts(api, monitored, viewer):
    alert = _open_alert(monitored)
    body = api(viewer).get("/api/v1/models/loans/monitoring/?limit=5").json()
    assert body["model"] == "loans" and body["window_minutes"] == 60
    assert [a["id"] for a in body["alerts"]] == [alert.pk]
    (run,) = body["runs"]
    assert (run["version"], run["status"]) == ("1.0.0", "alerting")
    assert run["figures"]["60"]["drift"]["features"]["tenure"]["psi"] > 0.2
    assert api(viewer).get("/api/v1/models/nope/monitoring/").status_code == 404
