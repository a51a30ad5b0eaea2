"""The audit trail: one event per change, in order, chained, keyed, checkpointed, append-only."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import override_settings

from core import audit, tasks
from core.models import AuditChainHead, AuditEvent
from registry import services
from tests import helpers

ROOT = Path(__file__).resolve().parents[2]


def test_a_client_cannot_choose_its_request_id_without_a_trusted_proxy(api, data_scientist,
                                                                       churn_model):
    response = helpers.register(api(data_scientist), "churn_prediction", "1.0.0",
                                headers={"HTTP_X_REQUEST_ID": "someone-elses-request"})
    assert response["X-Request-ID"] != "someone-elses-request"
    event = AuditEvent.objects.get(action="version.registered")
    assert event.request_id == response["X-Request-ID"]


def test_each_change_writes_one_event_in_order_with_actor_and_request(
    api, data_scientist, churn_model, settings
):
    settings.TRUSTED_PROXY_COUNT = 1  # behind a proxy that sets the request id
    response = helpers.register(api(data_scientist), "churn_prediction", "1.0.0",
                                headers={"HTTP_X_REQUEST_ID": "req-0000001"})
    assert response.status_code == 201
    assert response["X-Request-ID"] == "req-0000001"
    api(data_scientist).patch("/api/v1/models/churn_prediction/versions/1.0.0/",
                              {"description": "better"}, format="json")

    events = list(AuditEvent.objects.filter(model_name="churn_prediction").order_by("seq"))
    assert [e.action for e in events] == ["model.created", "version.registered",
                                          "version.updated"]
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    registered = events[1]
    assert registered.actor_name == "dana"
    assert registered.request_id == "req-0000001"
    assert registered.client_ip == "127.0.0.1"
    assert registered.object_repr == "churn_prediction 1.0.0"
    assert events[2].prev_hash == events[1].hash
    assert json.loads(events[2].before) == {"description": "Churn model"}


def test_a_refused_request_writes_no_event(api, viewer, churn_model):
    before = AuditEvent.objects.count()
    assert helpers.register(api(viewer), "churn_prediction").status_code == 403
    assert AuditEvent.objects.count() == before


def test_events_cannot_be_changed_or_deleted_through_the_orm(data_scientist, churn_model):
    event = AuditEvent.objects.get(action="model.created")
    event.reason = "rewritten"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(reason="x")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()


def test_the_database_refuses_update_and_delete(data_scientist, churn_model):
    event = AuditEvent.objects.get(action="model.created")
    table = AuditEvent._meta.db_table
    for statement in (f"UPDATE {table} SET reason = 'x' WHERE id = %s",
                      f"DELETE FROM {table} WHERE id = %s"):
        with pytest.raises(DatabaseError, match="append-only"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).reason == ""


def test_the_chain_verifies_and_names_an_altered_event(data_scientist, churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    services.model_update(model=churn_model, actor=data_scientist, description="x")
    assert audit.verify_chain().ok
    assert audit.verify_chain().checked == AuditEvent.objects.count()
    second = AuditEvent.objects.order_by("seq")[1].seq

    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            cursor.execute(f"UPDATE {table} SET actor_name = 'mallory' WHERE seq = %s", [second])
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
        else:
            cursor.execute("DROP TRIGGER governance_auditevent_no_update")
            cursor.execute(f"UPDATE {table} SET actor_name = 'mallory' WHERE seq = %s", [second])
    report = audit.verify_chain()
    assert not report.ok
    assert report.first_bad_seq == second


def test_audit_record_refuses_to_run_outside_a_transaction(transactional_db, data_scientist):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.record(action="x", actor=data_scientist)


def test_deleting_a_user_keeps_their_events_unchanged_and_the_chain_intact(api, viewer,
                                                                           churn_model):
    from django.contrib.auth import get_user_model

    from core.audit import verify_chain

    # vic tries to move a version he may not: the refusal is his event.
    helpers.register_direct("churn_prediction", "1.0.0", actor=churn_model.owner)
    response = api(viewer).post("/api/v1/models/churn_prediction/versions/1.0.0/transitions/",
                                {"to_stage": "staging"}, format="json")
    assert response.status_code == 403
    event = AuditEvent.objects.filter(actor_name="vic").last()
    assert event is not None
    get_user_model().objects.filter(pk=viewer.pk).delete()
    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.actor_name, kept.hash) == ("vic", event.hash)
    assert verify_chain().ok


# --- the key and the checkpoints: what the database's owner can no longer do unnoticed --------

ANOTHER_KEY = "a-key-the-database-owner-made-up-0123456789"


def _chain(actor, count: int) -> list[AuditEvent]:
    events = []
    for number in range(count):
        with transaction.atomic():
            events.append(audit.record(action="test.event", actor=actor, after={"n": number}))
    return events


def _hash_with_another_key(event) -> str:
    with override_settings(AUDIT_CHAIN_KEY=ANOTHER_KEY):
        return audit.event_hash(event)


def _rehash(first: int, hasher, *, last: int | None = None, **edit) -> None:
    """The database's owner edits event #first, re-hashes it and the ones after it (up to #last)
    with `hasher`, and moves the head along (when the re-hash reaches the end)."""
    prev = AuditEvent.objects.get(seq=first - 1).hash if first > 1 else audit.GENESIS_HASH
    events = AuditEvent.objects.filter(seq__gte=first).order_by("seq")
    statements = []
    for event in events.filter(seq__lte=last) if last else events:
        for name, value in edit.items() if event.seq == first else ():
            setattr(event, name, value)
        event.prev_hash = prev
        event.hash = prev = hasher(event)
        statements.append(("UPDATE governance_auditevent SET actor_name = %s, reason = %s, "
                           "prev_hash = %s, hash = %s WHERE seq = %s",
                           [event.actor_name, event.reason, event.prev_hash, event.hash,
                            event.seq]))
    helpers.audit_tamper(*statements)
    if last is None:
        AuditChainHead.objects.filter(pk=1).update(hash=prev)


def _cut_after(seq: int) -> None:
    """The database's owner deletes the events after #seq and rewinds the head to it."""
    helpers.audit_tamper(("DELETE FROM governance_auditevent WHERE seq > %s", [seq]))
    AuditChainHead.objects.filter(pk=1).update(seq=seq, hash=AuditEvent.objects.get(seq=seq).hash)


def _legacy_chain(actor, count: int) -> int:
    """A chain as the app wrote it before it had a key (plain sha256, the head not keyed);
    returns its last seq."""
    _chain(actor, count)
    _rehash(1, audit.legacy_event_hash)
    AuditChainHead.objects.filter(pk=1).update(keyed_from_seq=None)
    return AuditChainHead.objects.get(pk=1).seq


@pytest.mark.parametrize("hasher", [audit.legacy_event_hash, _hash_with_another_key],
                         ids=["plain sha256", "another key"])
def test_a_chain_edited_and_re_hashed_without_the_key_is_broken_at_the_edited_event(
    data_scientist, hasher
):
    events = _chain(data_scientist, 5)
    assert audit.verify_chain().ok
    _rehash(events[2].seq, hasher, actor_name="mallory")

    report = audit.verify_chain()
    assert not report.ok
    assert report.first_bad_seq == events[2].seq
    assert report.problem == f"event #{events[2].seq} was altered or re-hashed without the key"


def test_a_cut_tail_with_the_head_rewound_is_named_by_the_checkpoint_before_the_cut(
    data_scientist, settings, tmp_path
):
    events = _chain(data_scientist, 6)
    checkpoint = audit.audit_checkpoint_write()
    _cut_after(events[2].seq)

    report = audit.verify_chain()
    assert not report.ok
    first, last = events[3].seq, events[5].seq
    assert (report.first_bad_seq, report.missing) == (first, (first, last))
    assert report.problem == (f"events #{first}..#{last} are missing (the chain was cut after "
                              f"the checkpoint of {checkpoint['at']})")
    # Without its checkpoints, the cut chain is consistent in itself: they are what shows it.
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "elsewhere.jsonl"
    assert audit.verify_chain().ok


def test_events_written_after_a_cut_differ_from_the_checkpoint(data_scientist):
    events = _chain(data_scientist, 4)
    checkpoint = audit.audit_checkpoint_write()
    _cut_after(events[1].seq)
    _chain(data_scientist, 3)  # the app goes on writing over the cut

    report = audit.verify_chain()
    assert report.first_bad_seq == events[3].seq
    assert report.problem == (f"event #{events[3].seq} differs from the checkpoint of "
                              f"{checkpoint['at']}")


def test_a_forged_checkpoint_that_covers_a_cut_is_reported(data_scientist, audit_checkpoints):
    events = _chain(data_scientist, 4)
    audit.audit_checkpoint_write()
    _cut_after(events[1].seq)
    # The checkpoint file is rewritten to match the cut chain, signed with a key of one's own.
    audit_checkpoints.write_text("")
    with override_settings(AUDIT_CHAIN_KEY=ANOTHER_KEY):
        forged = audit.audit_checkpoint_write()

    report = audit.verify_chain()
    assert not report.ok
    assert report.first_bad_seq is None
    assert report.problem == (f"checkpoint line 1 (#{events[1].seq} of {forged['at']}) has a bad "
                              "signature: it was forged or altered")


def test_a_line_that_is_not_a_checkpoint_is_reported(data_scientist, audit_checkpoints):
    _chain(data_scientist, 2)
    audit.audit_checkpoint_write()
    with audit_checkpoints.open("a") as handle:
        handle.write('{"seq": 9, "hash": "x"}\n')
    report = audit.verify_chain()
    assert (report.ok, report.checkpoints) == (False, 1)
    assert report.problem == "checkpoint line 2 is not a checkpoint"


def test_an_unreadable_checkpoint_file_is_a_problem_and_a_missing_one_is_not(
    data_scientist, settings, tmp_path
):
    _chain(data_scientist, 2)
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "none-yet.jsonl"
    report = audit.verify_chain()
    assert (report.ok, report.notes) == (True, ["no checkpoints yet"])
    settings.AUDIT_CHECKPOINT_FILE = tmp_path  # a folder: it cannot be read as a file
    report = audit.verify_chain()
    assert not report.ok
    assert report.problem.startswith("the checkpoint file cannot be read: ")


def test_a_legacy_prefix_followed_by_keyed_events_verifies_intact(data_scientist):
    legacy = _legacy_chain(data_scientist, 3)
    report = audit.verify_chain()
    assert (report.ok, report.checked) == (True, legacy)
    assert "no event is keyed yet: the chain predates the key" in report.notes

    keyed = _chain(data_scientist, 2)  # the upgraded app appends keyed events
    assert AuditChainHead.objects.get(pk=1).keyed_from_seq == keyed[0].seq == legacy + 1
    assert keyed[0].hash == audit.event_hash(keyed[0]) != audit.legacy_event_hash(keyed[0])
    report = audit.verify_chain()
    assert (report.ok, report.checked) == (True, legacy + 2), report.problem
    assert f"events #1..#{legacy} predate the chain key (plain sha256)" in report.notes


def test_editing_the_legacy_prefix_is_caught_at_the_first_keyed_event(data_scientist):
    legacy = _legacy_chain(data_scientist, 3)
    _chain(data_scientist, 2)
    # Without the key, the re-hash can only reach the last unkeyed event.
    _rehash(legacy - 1, audit.legacy_event_hash, last=legacy, actor_name="mallory")

    report = audit.verify_chain()
    assert report.first_bad_seq == legacy + 1
    assert report.problem == f"event #{legacy + 1} does not follow #{legacy}"


def test_moving_the_keyed_mark_to_pass_off_a_plain_re_hash_is_caught_by_a_checkpoint(
    data_scientist, settings, tmp_path
):
    events = _chain(data_scientist, 4)
    checkpoint = audit.audit_checkpoint_write()
    # An edit, the whole chain re-hashed as if it predated the key, and the mark cleared.
    _rehash(events[1].seq, audit.legacy_event_hash, actor_name="mallory")
    _rehash(1, audit.legacy_event_hash)
    AuditChainHead.objects.filter(pk=1).update(keyed_from_seq=None)

    report = audit.verify_chain()
    assert report.first_bad_seq == 1
    assert report.problem == (
        "event #1 was altered or re-hashed without the key; the chain head says "
        f"events are keyed from nowhere, the checkpoint of {checkpoint['at']} says from "
        f"#{checkpoint['keyed_from']}: someone moved it")
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "elsewhere.jsonl"
    assert audit.verify_chain().ok  # the mark in the database alone cannot tell


def test_a_checkpoint_is_written_only_when_the_head_moved(data_scientist, audit_checkpoints,
                                                          caplog):
    _chain(data_scientist, 2)
    with caplog.at_level(logging.INFO, logger="core.audit"):
        first = tasks.audit_checkpoint_write.delay().get()
    head = AuditChainHead.objects.get(pk=1)
    assert (first["seq"], first["hash"], first["keyed_from"]) == (head.seq, head.hash, 1)
    line = audit_checkpoints.read_text()
    assert json.loads(line) == first
    assert f"audit checkpoint {line.strip()}" in caplog.messages

    assert audit.audit_checkpoint_write() is None
    assert audit_checkpoints.read_text() == line

    _chain(data_scientist, 1)
    second = audit.audit_checkpoint_write()
    assert second["seq"] == first["seq"] + 1
    assert audit_checkpoints.read_text().splitlines() == [line.strip(), json.dumps(
        second, separators=(",", ":"))]
    report = audit.verify_chain()
    assert (report.ok, report.checkpoints) == (True, 2)


def test_a_fresh_install_is_keyed_from_the_first_event_and_checkpointed_by_beat(tmp_path):
    """migrate on a new database, then what the beat schedule and an operator would run."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_")}
    environment.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
                       APP_VAR_DIR=str(tmp_path / "var"), DJANGO_ENV="development")

    def manage(*args):
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT,
                                env=environment, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    manage("migrate", "--noinput", "-v0")
    out = manage("shell", "-c", "from django_celery_beat.models import PeriodicTask; "
                 "from core.models import AuditChainHead; "
                 "task = PeriodicTask.objects.get(task='core.audit_checkpoint_write'); "
                 "print(task.enabled, task.interval.every, task.interval.period, "
                 "AuditChainHead.objects.get(pk=1).keyed_from_seq)")
    assert out.splitlines()[-1].split() == ["True", "60", "seconds", "1"]
    assert "checkpoint of #0" in manage("audit_checkpoint")
    assert (tmp_path / "var" / "audit-checkpoints.jsonl").exists()
    assert "intact: 0 events verified" in manage("verify_audit")
