"""Writing and verifying the hash-chained audit trail."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from governance import context
from governance.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64


def _json(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(event: AuditEvent) -> str:
    payload = [
        event.seq,
        event.occurred_at.isoformat(),
        event.actor_id,
        event.actor_name,
        event.action,
        event.object_type,
        event.object_id,
        event.object_repr,
        event.model_name,
        event.before,
        event.after,
        event.reason,
        event.request_id,
        event.client_ip,
        event.prev_hash,
    ]
    canonical = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _model_name_of(subject) -> str:
    if subject is None:
        return ""
    label = subject._meta.label_lower
    if label == "registry.registeredmodel":
        return subject.name
    model = getattr(subject, "model", None)
    if label == "registry.modelversion" and model is not None:
        return model.name
    return getattr(subject, "model_name", "") or ""


def record(
    *,
    action: str,
    actor,
    subject=None,
    before=None,
    after=None,
    reason: str = "",
    model_name: str | None = None,
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change itself."""
    if not connection.in_atomic_block:
        raise RuntimeError("audit.record must run inside the transaction of the change")
    # The head row serialises writers (SQLite's IMMEDIATE transactions already do).
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        # A migration creates the head; only a flushed database (tests) lacks it.
        AuditChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})
        head = AuditChainHead.objects.select_for_update().get(pk=1)
    event = AuditEvent(
        seq=head.seq + 1,
        occurred_at=timezone.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        actor_name=actor.get_username() if getattr(actor, "pk", None) else "system",
        action=action,
        object_type=subject._meta.label_lower if subject is not None else "",
        object_id=str(subject.pk) if subject is not None else "",
        object_repr=str(subject)[:300] if subject is not None else "",
        model_name=model_name if model_name is not None else _model_name_of(subject),
        before=_json(before),
        after=_json(after),
        reason=reason or "",
        request_id=context.request_id_var.get(),
        client_ip=context.client_ip_var.get(),
        prev_hash=head.hash,
    )
    event.hash = event_hash(event)
    event.save(force_insert=True)
    head.seq, head.hash = event.seq, event.hash
    head.save(update_fields=["seq", "hash"])
    return event


@dataclass
class ChainReport:
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None


def verify_chain(batch_size: int = 5000) -> ChainReport:
    """Walk the chain in seq order; report the first event that was altered, removed or moved."""
    expected_prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    events = AuditEvent.objects.order_by("seq")
    for event in events.iterator(chunk_size=batch_size):
        if event.seq != expected_seq:
            return ChainReport(
                checked, expected_seq, f"event #{expected_seq} is missing (found #{event.seq})"
            )
        if event.prev_hash != expected_prev:
            return ChainReport(
                checked, event.seq, f"event #{event.seq} does not follow #{event.seq - 1}"
            )
        if event_hash(event) != event.hash:
            return ChainReport(checked, event.seq, f"event #{event.seq} was altered")
        expected_prev = event.hash
        expected_seq += 1
        checked += 1
    head = AuditChainHead.objects.get(pk=1)
    if head.seq != checked:
        return ChainReport(
            checked,
            min(head.seq, checked) + 1,
            f"the chain head says #{head.seq} but the last event is #{checked}",
        )
    if checked and head.hash != expected_prev:
        return ChainReport(checked, checked, f"event #{checked} was replaced")
    return ChainReport(checked)


def record_on_commit_safe(**kwargs) -> AuditEvent:
    """`record` in its own transaction, for events with no other write (a refused request)."""
    with transaction.atomic():
        return record(**kwargs)
