"""verify_audit and audit_checkpoint from the command line."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.db import transaction

from core import audit
from core.models import AuditEvent
from registry import services
from tests import helpers

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def history(data_scientist, churn_model):
    """Real events of several kinds: roles granted, a model created and edited, two versions
    registered."""
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist)
    services.model_update(model=churn_model, actor=data_scientist, description="edited")
    assert list(AuditEvent.objects.order_by("seq").values_list("action", flat=True)) == [
        "role.granted", "model.created", "version.registered", "version.registered",
        "model.updated"]


def _tamper(sql: str, params=()):
    helpers.audit_tamper((sql.format(table=AuditEvent._meta.db_table), list(params)))


def _last_event() -> tuple[str, str, str, dict]:
    event = AuditEvent.objects.order_by("seq").last()
    return event.action, event.actor_name, event.reason, json.loads(event.after)


def test_verify_audit_passes_on_an_intact_chain_and_records_the_verification(history):
    events = AuditEvent.objects.count()
    out = run("verify_audit")
    assert "audit chain intact" in out
    assert f"{events} events" in out
    assert "note: no checkpoints yet" in out
    assert _last_event() == ("audit.verified", "system", "", {
        "result": "intact", "events": events, "checkpoints": 0, "first_bad_seq": None})
    run("audit_checkpoint")
    assert "and against 1 checkpoints" in run("verify_audit")
    # The first verification is itself verified by the second.
    assert _last_event()[3] == {"result": "intact", "events": events + 1, "checkpoints": 1,
                                "first_bad_seq": None}
    assert AuditEvent.objects.filter(action="audit.verified").count() == 2


def _events(actor, count: int) -> list[int]:
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
    target = AuditEvent.objects.filter(action="version.registered").first().seq
    _tamper(tampering, [target])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert f"BROKEN at event #{target}" in out
    assert problem in out
    action, actor, reason, found = _last_event()
    assert (action, actor, found["result"], found["first_bad_seq"]) == (
        "audit.verified", "system", "broken", target)
    assert problem in reason


def test_verify_audit_detects_reordered_events(history, capsys):
    first, second = AuditEvent.objects.order_by("seq").values_list("seq", flat=True)[3:5]
    # Swap two events' positions (their content stays, their order changes).
    _tamper("UPDATE {table} SET seq = -1 WHERE seq = %s", [first])
    _tamper("UPDATE {table} SET seq = %s WHERE seq = %s", [first, second])
    _tamper("UPDATE {table} SET seq = %s WHERE seq = -1", [second])
    with pytest.raises(SystemExit):
        call_command("verify_audit")
    assert f"BROKEN at event #{first}" in capsys.readouterr().out


def test_the_daily_task_records_its_verification_as_the_system(history):
    from core.tasks import audit_chain_verify

    assert audit_chain_verify() == {"ok": True, "checked": 5, "problem": ""}
    assert _last_event()[:2] == ("audit.verified", "system")


def test_a_verification_that_cannot_be_recorded_still_reports_the_break(history, capsys):
    from core.models import AuditChainHead

    # The head row moved back behind the last event: appending at head + 1 would collide.
    last = AuditEvent.objects.order_by("seq").last()
    AuditChainHead.objects.filter(pk=1).update(seq=last.seq - 1, hash=last.prev_hash)
    with pytest.raises(SystemExit):
        call_command("verify_audit")
    out = capsys.readouterr().out
    assert f"the chain head says #{last.seq - 1} but the last event is #{last.seq}" in out
    assert "note: this verification could not be recorded" in out
    assert not AuditEvent.objects.filter(action="audit.verified").exists()
