"""switch_model_version, verify_audit and audit_report from the command line."""

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
    from tests import helpers

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


def _tamper(sql: str, params=()):
    helpers.audit_tamper((sql.format(table=AuditEvent._meta.db_table), list(params)))


def test_verify_audit_passes_on_an_intact_chain(history):
    out = run("verify_audit")
    assert "audit chain intact" in out
    assert f"{AuditEvent.objects.count()} events" in out
    assert "note: no checkpoints yet" in out
    run("audit_checkpoint")
    assert "and against 1 checkpoints" in run("verify_audit")


def _events(actor, count: int) -> list[int]:
    from django.db import transaction

    from core import audit

    seqs = []
    for number in range(count):
        with transaction.atomic():
            seqs.append(audit.record(action="test.event", actor=actor, after={"n": number}).seq)
    return seqs


def test_audit_checkpoint_writes_one_until_the_head_moves(data_scientist, audit_checkpoints):
    seq = _events(data_scientist, 2)[-1]
    assert run("audit_checkpoint").startswith(f"checkpoint of #{seq} at ")
    assert run("audit_checkpoint") == "the chain head has not moved since the last checkpoint\n"
    assert len(audit_checkpoints.read_text().splitlines()) == 1
    _events(data_scientist, 1)
    assert run("audit_checkpoint").startswith(f"checkpoint of #{seq + 1} at ")
    assert len(audit_checkpoints.read_text().splitlines()) == 2


def test_verify_audit_names_the_events_cut_after_a_checkpoint(data_scientist, capsys):
    from core.models import AuditChainHead

    seqs = _events(data_scientist, 5)
    run("audit_checkpoint")
    _tamper("DELETE FROM {table} WHERE seq > %s", [seqs[1]])
    AuditChainHead.objects.filter(pk=1).update(
        seq=seqs[1], hash=AuditEvent.objects.get(seq=seqs[1]).hash)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert (f"BROKEN at event #{seqs[2]}: events #{seqs[2]}..#{seqs[4]} are missing (the chain "
            "was cut after the checkpoint of ") in capsys.readouterr().out


def test_verify_audit_reports_a_forged_checkpoint(data_scientist, audit_checkpoints, capsys):
    seq = _events(data_scientist, 2)[-1]
    run("audit_checkpoint")
    checkpoint = json.loads(audit_checkpoints.read_text())
    audit_checkpoints.write_text(json.dumps({**checkpoint, "seq": seq + 10}) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert (f"audit chain BROKEN: checkpoint line 1 (#{seq + 10} of {checkpoint['at']}) has a "
            f"bad signature: it was forged or altered ({seq} events verified)"
            ) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("tampering", "problem"),
    [
        ("UPDATE {table} SET reason = 'nothing to see' WHERE seq = %s", "was altered"),
        ("DELETE FROM {table} WHERE seq = %s", "is missing"),
    ],
)
def test_verify_audit_names_the_first_altered_or_removed_event(history, capsys, tampering,
                                                              problem):
    target = AuditEvent.objects.filter(action="deployment.completed").first().seq
    _tamper(tampering, [target])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert f"BROKEN at event #{target}" in out
    assert problem in out


def test_verify_audit_detects_reordered_events(history, capsys):
    first, second = AuditEvent.objects.order_by("seq").values_list("seq", flat=True)[3:5]
    # Swap two events' positions (their content stays, their order changes).
    _tamper("UPDATE {table} SET seq = -1 WHERE seq = %s", [first])
    _tamper("UPDATE {table} SET seq = %s WHERE seq = %s", [first, second])
    _tamper("UPDATE {table} SET seq = %s WHERE seq = -1", [second])
    with pytest.raises(SystemExit):
        call_command("verify_audit")
    assert f"BROKEN at event #{first}" in capsys.readouterr().out


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
