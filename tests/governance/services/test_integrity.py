"""integrity_sweep: the periodic check of what serves against the sha256 registered for each
file. It flags what fails (once), lifts the flag from what is intact again, and reads only what
serves (production, rollout candidates) and what is flagged."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.models import AuditEvent
from governance import services
from monitoring.models import Alert
from tests import helpers

pytestmark = pytest.mark.django_db(transaction=True)  # alerts are opened on commit


def _file(store_root, stage, version):
    return Path(store_root, stage, "churn_prediction", f"v{version}", "model.joblib")


def test_the_sweep_flags_a_changed_file_and_lifts_the_flag_when_it_is_restored(
    validated, store_root
):
    version = validated("1.0.0", stage="production")
    path = _file(store_root, "production", "1.0.0")
    original = path.read_bytes()
    assert services.integrity_sweep() == []
    path.write_bytes(bytes([original[0] ^ 0xFF]) + original[1:])

    assert services.integrity_sweep() == [f"{version}: flagged"]
    version.refresh_from_db()
    assert version.integrity_failed_at is not None
    assert version.integrity_problem == {
        "file": "model.joblib", "expected_sha256": helpers.sha256(original),
        "actual_sha256": helpers.sha256(path.read_bytes()), "missing": False,
        "found_by": "integrity sweep"}
    flagged = AuditEvent.objects.get(action="version.integrity_failed")
    assert flagged.object_repr == str(version)

    path.write_bytes(original)
    assert services.integrity_sweep() == [f"{version}: intact again"]
    version.refresh_from_db()
    assert (version.integrity_failed_at, version.integrity_problem) == (None, {})
    assert AuditEvent.objects.filter(action="version.integrity_restored").count() == 1
    assert Alert.objects.get(rule__metric="integrity").status == "resolved"
    assert services.integrity_sweep() == []


def test_the_sweep_finds_a_missing_file_without_any_request(validated, store_root):
    version = validated("1.0.0", stage="production")
    _file(store_root, "production", "1.0.0").unlink()
    assert services.integrity_sweep() == [f"{version}: flagged"]
    assert services.integrity_sweep() == []  # flagged once, one alert
    version.refresh_from_db()
    assert version.integrity_problem["missing"] is True
    assert Alert.objects.filter(rule__metric="integrity").count() == 1


def test_the_sweep_reads_what_serves_and_a_rollout_candidate_serves(validated, approver,
                                                                     store_root):
    validated("1.0.0", stage="production")
    candidate = validated("1.1.0", stage="staging")
    _file(store_root, "staging", "1.1.0").write_bytes(b"changed")
    assert services.integrity_sweep() == []  # staging serves nothing
    services.rollout_start(version=candidate, mode="shadow", actor=approver)
    assert services.integrity_sweep() == [f"{candidate}: flagged"]
