"""The audit trail: one event per change, in order, chained, and append-only."""

from __future__ import annotations

import json

import pytest
from django.db import DatabaseError, connection, transaction

from governance import audit
from governance.models import AuditEvent
from registry import services
from tests import helpers


def test_each_change_writes_one_event_in_order_with_actor_and_request(
    api, data_scientist, churn_model
):
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

    from governance.audit import verify_chain

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
