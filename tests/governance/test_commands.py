"""switch_model_version and audit_report from the command line."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from core.models import AuditEvent
from governance.models import Deployment
from registry.models import ModelVersion
from tests import helpers
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(validated):
    """1.0.0 archived (was production), 1.1.0 production, 1.2.0 staging."""
    validated("1.0.0", stage="production", metrics={"accuracy": 0.8})
    validated("1.1.0", stage="production", metrics={"accuracy": 0.82})
    validated("1.2.0", stage="staging", metrics={"accuracy": 0.83})


def test_list_shows_each_stage(history):
    out = run("switch_model_version", "--list")
    assert "churn_prediction" in out
    assert "production  1.1.0" in out
    assert "staging     1.2.0" in out
    assert "archive     1.0.0" in out


def test_info_shows_a_version_by_environment(history):
    info = json.loads(run("switch_model_version", "--model", "churn_prediction", "--info",
                          "archive/v1.0.0"))
    assert info["version"] == "1.0.0"
    assert info["folder"] == "archived/churn_prediction/v1.0.0"
    assert info["replaced_by"] == "1.1.0"
    assert " passed: " in info["validation"]
    production = json.loads(run("switch_model_version", "--model", "churn_prediction",
                                "--info", "production"))
    assert production["version"] == "1.1.0"


def test_with_one_model_the_old_scripts_options_work_without_model(history):
    out = run("switch_model_version", "--info", "production")
    assert '"version": "1.1.0"' in out


def test_with_several_models_model_is_required(history, data_scientist):

    helpers.create_model(owner=data_scientist, name="other_model")
    with pytest.raises(CommandError, match="--model is needed"):
        run("switch_model_version", "--info", "production")


def test_a_dry_run_changes_nothing(history):
    with Unchanged():
        out = run("switch_model_version", "--model", "churn_prediction", "--env", "staging",
                  "--dry-run")
    assert "nothing changes" in out
    assert "staging/churn_prediction/v1.2.0 → production/" in out


def test_an_admin_switches_to_an_archived_version_and_it_is_recorded(history, admin_user):
    out = run("switch_model_version", "--model", "churn_prediction", "--env", "archive/1.0.0",
              "--user", "ada", "--reason", "incident 4711: roll back")
    assert "1.0.0 is in production" in out
    stages = dict(ModelVersion.objects.values_list("version", "stage"))
    assert stages == {"1.0.0": "production", "1.1.0": "archived", "1.2.0": "staging"}
    deployment = Deployment.objects.order_by("-pk").first()
    assert (deployment.kind, deployment.requested_by.username, deployment.reason) == (
        "forced", "ada", "incident 4711: roll back")
    assert AuditEvent.objects.filter(action="deployment.completed", actor_name="ada").exists()


def test_a_switch_needs_an_admin_a_user_and_a_reason(history, data_scientist):
    with Unchanged():
        with pytest.raises(CommandError, match="--user and --reason"):
            run("switch_model_version", "--model", "churn_prediction", "--env", "staging")
        with pytest.raises(CommandError, match="needs the role admin"):
            run("switch_model_version", "--model", "churn_prediction", "--env", "staging",
                "--user", "dana", "--reason", "try")
        with pytest.raises(CommandError, match="no archived version"):
            run("switch_model_version", "--model", "churn_prediction", "--env", "archive/9.9.9",
                "--dry-run")


def test_even_a_forced_switch_does_not_put_a_failed_version_into_production(
    history, admin_user, store_root
):
    from pathlib import Path

    from governance import services

    staged = ModelVersion.objects.get(version="1.2.0")
    (Path(store_root) / "staging/churn_prediction/v1.2.0/model.joblib").write_bytes(b"bad")
    assert services.validation_request_now(staged).status == "failed"
    with Unchanged(allow_actions=()):
        with pytest.raises(CommandError, match="validation #.* failed"):
            run("switch_model_version", "--model", "churn_prediction", "--env", "staging",
                "--user", "ada", "--reason", "incident: ship it anyway")
    assert dict(ModelVersion.objects.values_list("version", "stage"))["1.2.0"] == "staging"


def test_audit_report_tells_each_versions_story(history, tmp_path):
    target = tmp_path / "report.html"
    run("audit_report", "--model", "churn_prediction", "--output", str(target))
    html = target.read_text()
    assert "Audit chain:" in html and "verified" in html
    assert "churn_prediction 1.0.0" in html and "churn_prediction 1.2.0" in html
    assert "Registered by <b>dana</b>" in html
    assert "production → archived" in html  # 1.0.0's retirement
    assert "forced" in html  # the set-up's moves were forced by an admin


def test_audit_report_as_csv_lists_the_events_in_order(history, tmp_path):
    target = tmp_path / "report.csv"
    run("audit_report", "--format", "csv", "--output", str(target))
    rows = list(csv.DictReader(target.open()))
    assert len(rows) == AuditEvent.objects.count()
    assert [int(r["seq"]) for r in rows] == sorted(int(r["seq"]) for r in rows)
    assert {"version.registered", "deployment.completed"} <= {r["action"] for r in rows}
    with pytest.raises(CommandError):
        run("audit_report", "--model", "nope")
