"""Writing and verifying the keyed, hash-chained audit trail, and its signed checkpoints.

Each event's hash is an HMAC under AUDIT_CHAIN_KEY, a key kept out of the database, so whoever
can write the table cannot re-hash an edited chain. Checkpoints of the head (seq and hash),
signed with the same key, are kept outside the database too, so a cut tail shows as well.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from core import context
from core.models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
VERIFIED = "audit.verified"  # the action of a recorded verification (audit_chain_verify)
CHECKPOINT_FIELDS = ("seq", "hash", "keyed_from", "at")
logger = logging.getLogger(__name__)


def _json(value) -> str:
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# The fields an event's hash covers, in this order; `prev_hash` links it to the one before.
HASHED_FIELDS = ("seq", "occurred_at", "actor_id", "actor_name", "action", "object_type",
                 "object_id", "object_repr", "model_name", "before", "after", "reason",
                 "request_id", "client_ip", "prev_hash")
_canonical = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _payload(values) -> bytes:
    seq, occurred_at, *rest = values
    return _canonical([seq, occurred_at.isoformat(), *rest]).encode()


def _chain_mac():
    """An HMAC-SHA256 under the chain key, to `copy()` per message (keyed once)."""
    return hmac.new(settings.AUDIT_CHAIN_KEY.encode(), digestmod=hashlib.sha256)


def event_hash(event: AuditEvent) -> str:
    """The event's hash: HMAC-SHA256 under AUDIT_CHAIN_KEY, which the database never holds."""
    mac = _chain_mac()
    mac.update(_payload(getattr(event, name) for name in HASHED_FIELDS))
    return mac.hexdigest()


def legacy_event_hash(event: AuditEvent) -> str:
    """The plain sha256 of events written before the chain had a key (verification only)."""
    return hashlib.sha256(_payload(getattr(event, name) for name in HASHED_FIELDS)).hexdigest()


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
    head = AuditChainHead.objects.select_for_update().get(pk=1)  # a migration made it
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
    if head.keyed_from_seq is None:  # the first keyed event of a chain older code started
        head.keyed_from_seq = event.seq
    head.save(update_fields=["seq", "hash", "keyed_from_seq"])
    return event


@dataclass(frozen=True)
class Checkpoint:
    line: int
    seq: int
    hash: str
    keyed_from: int | None
    at: str


def _signature(body: dict) -> str:
    mac = _chain_mac()
    mac.update(b"audit-checkpoint\n" + json.dumps(
        {name: body[name] for name in CHECKPOINT_FIELDS}, sort_keys=True,
        separators=(",", ":")).encode())
    return mac.hexdigest()


def _parse_checkpoint(raw: bytes, line: int) -> Checkpoint | str:
    """A checkpoint whose signature holds, or what is wrong with the line."""
    try:
        body = json.loads(raw)
        if set(body) != {*CHECKPOINT_FIELDS, "sig"}:
            raise ValueError
        checkpoint = Checkpoint(line, *(body[name] for name in CHECKPOINT_FIELDS))
    except (ValueError, TypeError):
        return f"checkpoint line {line} is not a checkpoint"
    if not (type(checkpoint.seq) is int and isinstance(checkpoint.hash, str)
            and (checkpoint.keyed_from is None or type(checkpoint.keyed_from) is int)
            and isinstance(checkpoint.at, str) and isinstance(body["sig"], str)):
        return f"checkpoint line {line} is not a checkpoint"
    if not hmac.compare_digest(_signature(body), body["sig"]):
        return (f"checkpoint line {line} (#{checkpoint.seq} of {checkpoint.at}) has a bad "
                "signature: it was forged or altered")
    return checkpoint


def read_checkpoints(path: Path | None = None) -> tuple[list[Checkpoint], list[str], list[str]]:
    """The checkpoints whose signature holds, the lines that are wrong, and notes."""
    path = Path(path or settings.AUDIT_CHECKPOINT_FILE)
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return [], [], ["no checkpoints yet"]
    except OSError as error:
        return [], [f"the checkpoint file cannot be read: {error}"], []
    checkpoints, problems = [], []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        parsed = _parse_checkpoint(raw, number)
        (checkpoints if isinstance(parsed, Checkpoint) else problems).append(parsed)
    return checkpoints, problems, [] if checkpoints or problems else ["no checkpoints yet"]


def _head() -> AuditChainHead:
    # A flushed database (tests) has no head row: it is an empty chain.
    return AuditChainHead.objects.filter(pk=1).first() or AuditChainHead(seq=0, hash=GENESIS_HASH)


def audit_checkpoint_write() -> dict | None:
    """Append the chain's head, signed with the chain key, to AUDIT_CHECKPOINT_FILE and the log.

    Returns the checkpoint, or None when the head has not moved since the last one.
    """
    path = Path(settings.AUDIT_CHECKPOINT_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    with open(path, "a+b") as handle:
        # Under the lock, so that concurrent writers append in the order they read the head.
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
        tail = handle.read()
        head = _head()
        body = {"seq": head.seq, "hash": head.hash, "keyed_from": head.keyed_from_seq}
        last = tail.rstrip(b"\n").rpartition(b"\n")[2]
        previous = _parse_checkpoint(last, 0) if tail.endswith(b"\n") else None
        if isinstance(previous, Checkpoint) and (
                previous.seq, previous.hash, previous.keyed_from) == tuple(body.values()):
            return None
        body["at"] = timezone.now().isoformat()
        body["sig"] = _signature(body)
        line = json.dumps(body, separators=(",", ":"))
        # After a write cut short, start on a line of its own.
        handle.write((b"" if not tail or tail.endswith(b"\n") else b"\n") + line.encode() + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    if created:
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    logger.info("audit checkpoint %s", line)
    return body


@dataclass
class ChainReport:
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""
    missing: tuple[int, int] | None = None
    checkpoints: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem


def _missing(first: int, last: int) -> str:
    return f"event #{first} is missing" if first == last else f"events #{first}..#{last} are missing"


def _keyed_from(head: AuditChainHead, checkpoints: list[Checkpoint]) -> tuple[int | None, str]:
    """Where keyed hashes start, as the checkpoints sign it (the head's copy is in the
    database's hands), and what is wrong if the head disagrees."""
    for checkpoint in checkpoints:
        if (checkpoint.keyed_from == head.keyed_from_seq if checkpoint.keyed_from is not None
                else head.keyed_from_seq is None or head.keyed_from_seq > checkpoint.seq):
            continue
        says = (f"from #{head.keyed_from_seq}" if head.keyed_from_seq else "from nowhere")
        signed = (f"from #{checkpoint.keyed_from}" if checkpoint.keyed_from is not None
                  else f"from after #{checkpoint.seq}")
        problem = (f"the chain head says events are keyed {says}, the checkpoint of "
                   f"{checkpoint.at} says {signed}: someone moved it")
        break
    else:
        problem = ""
    signed_from = [c.keyed_from for c in checkpoints if c.keyed_from is not None]
    return (signed_from[-1] if signed_from else head.keyed_from_seq), problem


def verify_chain(batch_size: int = 5000) -> ChainReport:
    """Walk the chain in seq order, re-computing each hash (with the chain key from
    `keyed_from` on), and hold it against every signed checkpoint: name the first event
    altered, re-hashed, removed or moved, or the events cut from the end."""
    # Checkpoints first, then the head: a checkpoint read now never names a seq beyond it.
    checkpoints, forged, notes = read_checkpoints()
    head = _head()
    problems: list[tuple[int | None, str]] = [(None, text) for text in forged]
    keyed_from, moved = _keyed_from(head, checkpoints)
    if moved:
        problems.append((None, moved))
    first_keyed = keyed_from if keyed_from is not None else head.seq + 1
    at_seq: dict[int, list[Checkpoint]] = {}
    for checkpoint in checkpoints:
        at_seq.setdefault(checkpoint.seq, []).append(checkpoint)

    mac = _chain_mac()
    expected_prev, expected_seq, checked, missing = GENESIS_HASH, 1, 0, None
    rows = (AuditEvent.objects.filter(seq__lte=head.seq).order_by("seq")
            .values_list(*HASHED_FIELDS, "hash"))
    for row in rows.iterator(chunk_size=batch_size):
        seq, stored = row[0], row[-1]
        if seq != expected_seq:
            missing = (expected_seq, seq - 1)
            problems.append((expected_seq, f"{_missing(*missing)} (found #{seq})"))
            break
        if row[-2] != expected_prev:
            problems.append((seq, f"event #{seq} does not follow #{seq - 1}"))
            break
        if seq >= first_keyed:
            digest = mac.copy()
            digest.update(_payload(row[:-1]))
            if digest.hexdigest() != stored:
                problems.append((seq, f"event #{seq} was altered or re-hashed without the key"))
                break
        elif hashlib.sha256(_payload(row[:-1])).hexdigest() != stored:
            problems.append((seq, f"event #{seq} was altered"))
            break
        if seq in at_seq:
            differs = [c.at for c in at_seq[seq] if c.hash != stored]
            if differs:
                problems.append((seq, f"event #{seq} differs from the checkpoint of {differs[0]}"))
                break
        expected_prev, expected_seq, checked = stored, seq + 1, checked + 1
    else:
        if checked == head.seq and checked and head.hash != expected_prev:
            problems.append((checked, f"event #{checked} was replaced"))

    last = AuditEvent.objects.aggregate(last=Max("seq"))["last"] or 0
    if last > head.seq:
        # Events appended during the walk moved the head in their own transaction.
        now = _head()
        if last > now.seq:
            problems.append((now.seq + 1,
                             f"the chain head says #{now.seq} but the last event is #{last}"))
    latest = max(checkpoints, key=lambda c: c.seq, default=None)
    claimed = max(head.seq, latest.seq if latest else 0)
    if claimed > last and missing is None:
        missing = (last + 1, claimed)
        cause = (f"the chain was cut after the checkpoint of {latest.at}"
                 if latest and latest.seq == claimed else f"the chain head says #{head.seq}")
        problems.append((last + 1, f"{_missing(*missing)} ({cause})"))

    if keyed_from is not None and keyed_from > 1 and checked:
        notes.append(f"events #1..#{min(keyed_from - 1, checked)} predate the chain key "
                     "(plain sha256)")
    elif keyed_from is None and checked:
        notes.append("no event is keyed yet: the chain predates the key")
    problems.sort(key=lambda problem: (problem[0] is None, problem[0] or 0))
    return ChainReport(
        checked=checked,
        first_bad_seq=next((seq for seq, _ in problems if seq is not None), None),
        problem="; ".join(text for _, text in problems),
        missing=missing,
        checkpoints=len(checkpoints),
        notes=notes,
    )


def audit_chain_verify(*, actor) -> ChainReport:
    """Verify the chain and append the verification to it as an `audit.verified` event (who
    checked, what was found), for the command, the admin's button and the daily beat task.

    The walk reads outside any transaction; the event is appended after it, in its own."""
    report = verify_chain()
    try:
        with transaction.atomic():
            record(action=VERIFIED, actor=actor, reason=report.problem, after={
                "result": "intact" if report.ok else "broken", "events": report.checked,
                "checkpoints": report.checkpoints, "first_bad_seq": report.first_bad_seq})
    except IntegrityError as error:
        # A head row moved back behind existing events (the report says so): appending at
        # head + 1 collides with one of them. The finding still reaches the caller.
        logger.error("audit chain verification could not be recorded: %s", error)
        report.notes.append(f"this verification could not be recorded: {error}")
    return report


@dataclass(frozen=True)
class Change:
    """One line of an event's change: `field: old → new` (old None: the event has no
    before at all, a creation; MISSING: that side lacks the field)."""
    field: str
    old: str | None
    new: str


MISSING = "—"
VALUE_CHARS = 300  # longer values are cut in the lines; the event page keeps the raw JSON


def _loaded(text: str):
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _shown(value) -> str:
    text = value if isinstance(value, str) else json.dumps(
        value, ensure_ascii=False, separators=(", ", ": "), default=str)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS - 1] + "…"


def change_lines(before: str, after: str) -> list[Change]:
    """An event's `before` and `after` (JSON text, as stored) as one line per field."""
    old, new = _loaded(before), _loaded(after)
    if old is None and new is None:
        return []
    if not (isinstance(old, dict | None) and isinstance(new, dict | None)):
        # A snapshot that is not an object (a list, a number): one line for the whole value.
        return [Change("value", None if old is None else _shown(old),
                       MISSING if new is None else _shown(new))]
    old_fields, new_fields = old or {}, new or {}
    names = [*new_fields, *(name for name in old_fields if name not in new_fields)]
    return [Change(name,
                   None if old is None else (_shown(old_fields[name]) if name in old_fields
                                             else MISSING),
                   _shown(new_fields[name]) if name in new_fields else MISSING)
            for name in names]


def changes_html(event) -> str:
    """An event's change as HTML lines `field: old → new`, for every page that shows one."""
    lines = change_lines(event.before, event.after)
    if not lines:
        return MISSING
    return format_html('<ul class="audit-changes">{}</ul>', format_html_join("", "{}", (
        (format_html("<li><b>{}</b>: {}</li>", line.field, line.new) if line.old is None
         else format_html("<li><b>{}</b>: {} → {}</li>", line.field, line.old, line.new),)
        for line in lines)))


def changes(before: dict | None, after: dict) -> tuple[dict | None, dict]:
    """What changed between two snapshots, as the (before, after) an event records: only the
    keys whose value differs (a new object: no before, everything after)."""
    before = before or {}
    return ({k: v for k, v in before.items() if after.get(k) != v} or None,
            {k: v for k, v in after.items() if before.get(k) != v})


def record_on_commit_safe(**kwargs) -> AuditEvent:
    """`record` in its own transaction, for events with no other write (a refused request)."""
    with transaction.atomic():
        return record(**kwargs)


def denied(*, actor, subject, attempted: str, message: str):
    """Record a refused action (in its own transaction: the refusal is history even though
    the request fails) and return the Forbidden error for the caller to raise."""
    from core.errors import Forbidden

    record_on_commit_safe(action="permission.denied", actor=actor, subject=subject,
                          after={"attempted": attempted}, reason=message)
    return Forbidden(message)
