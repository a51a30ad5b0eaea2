"""Single-row requests stored in blocks: one PredictionLogBlock row per flush, version, route
and protocol (PREDICTION_LOG_BLOCKS).

A single-row request as its own PredictionLog row costs a row header, a request-id index entry
and a time index entry per prediction, and a monitoring pass one database row per prediction
(bench/README.md: 3.2x the NumPy floor against 2.0x for batches). A block keeps the kept rows
packed as one batch would be, and what is per request (id, time, latency, caller, whether the
sampling rate kept its row) as packed columns.

Readers never see the layout: `requests()` turns a block back into PredictionLog objects
(unsaved, `block_id` set) for the feedback check, the trace and the admin; `in_window()`
gives monitoring the block's rows and latencies inside a window as arrays.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import numpy as np
from django.conf import settings

from predictions.fields import (
    column_kinds,
    pack_rows,
    unpack_parts,
    unpack_rows,
)
from predictions.models import PredictionLog, PredictionLogBlock

# Per request, in the block's order: time (µs since the epoch), latency, caller id (-1: none),
# and whether the sampling rate kept its row (the kept rows are `inputs`, in this order).
META = np.dtype([("at", "<i8"), ("latency", "<f8"), ("caller", "<i8"), ("kept", "u1")])
# A block never spans more than this, so a window's blocks are found by their first time.
MAX_SPAN = timedelta(minutes=5)
MAX_REQUESTS = 10_000  # per block: a pass's truncation and a trace read one block at most
# A request id names its time (below): its log is at most this far from it (the time of the
# answer, after the model ran, is what the log records).
LOOKUP_MARGIN = timedelta(minutes=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def new_request_id(at: datetime | None = None) -> str:
    """A UUIDv7 in hex (RFC 9562): 48 bits of milliseconds (now, or `at`), then random bits.
    Its time lets a request stored in a block be found without an index entry of its own."""
    milliseconds = time.time_ns() // 1_000_000 if at is None else micros(at) // 1000
    value = milliseconds << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC variant
    return f"{value:032x}"


def request_id_time(request_id: str) -> datetime | None:
    """The time a new_request_id() names; None for any other id (older uuid4 ids, ids that
    were given): those requests are row-stored."""
    if len(request_id) != 32 or request_id[12] != "7" or request_id[16] not in "89ab":
        return None
    try:
        milliseconds = int(request_id[:12], 16)
    except ValueError:
        return None
    return _EPOCH + timedelta(milliseconds=milliseconds)


def micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _time(micros) -> datetime:
    return _EPOCH + timedelta(microseconds=int(micros))


def is_blocked(answered) -> bool:
    """Whether a buffered request goes into a block: one row, and blocks are on."""
    matrix = answered.matrix
    return (settings.PREDICTION_LOG_BLOCKS and isinstance(matrix, np.ndarray)
            and matrix.ndim == 2 and len(matrix) == 1)


def build(answered: list) -> list[PredictionLogBlock]:
    """The blocks of buffered single-row requests (predictions.logs.Answered), grouped by
    version, route and protocol, in buffer order, split at MAX_SPAN and MAX_REQUESTS."""
    groups = defaultdict(list)
    for item in answered:
        groups[item.model_id, item.version_id, item.route, item.protocol].append(item)
    blocks = []
    for items in groups.values():
        items.sort(key=lambda item: item.created_at)
        start = 0
        for end in range(1, len(items) + 1):
            if (end == len(items) or end - start == MAX_REQUESTS
                    or items[end].created_at - items[start].created_at > MAX_SPAN):
                blocks.append(_block(items[start:end]))
                start = end
    return blocks


def _block(items: list) -> PredictionLogBlock:
    from predictions.logs import sample_indices

    rate = settings.PREDICTION_LOG_SAMPLE_RATE
    kept = np.fromiter((len(sample_indices(1, rate, item.request_id)) == 1 for item in items),
                       dtype=bool, count=len(items))
    meta = np.empty(len(items), dtype=META)
    meta["at"] = [micros(item.created_at) for item in items]
    meta["latency"] = [round(item.latency_ms, 3) for item in items]
    meta["caller"] = [-1 if item.caller_id is None else item.caller_id for item in items]
    meta["kept"] = kept
    chosen = [item for item, keep in zip(items, kept, strict=True) if keep]
    first = items[0]
    kinds = column_kinds(np.asarray(first.matrix)[:1])
    if chosen:
        matrix = np.concatenate([np.asarray(item.matrix) for item in chosen])
        outputs = np.concatenate([np.asarray(item.predictions) for item in chosen])
    else:
        matrix, outputs = np.empty((0, len(kinds))), []
    scores = [item.probabilities for item in chosen]
    if all(score is None for score in scores):
        probabilities = None
    elif all(score is not None for score in scores):
        probabilities = np.concatenate([np.asarray(score) for score in scores])
    else:  # as row-stored logs would say: no probabilities for some requests
        probabilities = [None if score is None else np.asarray(score)[0] for score in scores]
    routing = [item.routing_key[:200] for item in items]
    return PredictionLogBlock(
        model_id=first.model_id, version_id=first.version_id, route=first.route,
        protocol=first.protocol, created_at=items[0].created_at, last_at=items[-1].created_at,
        n_requests=len(items), n_rows=len(items),
        request_ids=" ".join(item.request_id for item in items), requests=meta.tobytes(),
        callers={str(item.caller_id): item.caller_name for item in items
                 if item.caller_id is not None} | (
            {"": items[0].caller_name} if any(item.caller_id is None and item.caller_name
                                               for item in items) else {}),
        routing_keys=routing if any(routing) else [],
        inputs=pack_rows(matrix, kinds=kinds), outputs=outputs, probabilities=probabilities)


def meta_of(raw) -> np.ndarray:
    return np.frombuffer(bytes(raw), dtype=META)


def meta(block) -> np.ndarray:
    return meta_of(block.requests)


def requests(block, request_id: str | None = None) -> list[PredictionLog]:
    """The block's requests (or the one with `request_id`) as PredictionLog objects, unsaved:
    what a row-stored log of the same request holds, with `block_id` naming the block."""
    ids = block.request_ids.split(" ")
    table = meta(block)
    rows = unpack_rows(bytes(block.inputs)) if len(block.inputs) else []
    position = np.cumsum(table["kept"]) - 1  # each request's place among the kept rows
    scores = block.probabilities
    found = []
    for n, rid in enumerate(ids):
        if request_id is not None and rid != request_id:
            continue
        kept = bool(table["kept"][n])
        at = position[n]
        caller = int(table["caller"][n])
        log = PredictionLog(
            request_id=rid, model=block.model, version=block.version,
            route=block.route, caller_id=None if caller < 0 else caller,
            caller_name=block.callers.get(str(caller) if caller >= 0 else "", ""),
            protocol=block.protocol, created_at=_time(table["at"][n]), n_rows=1,
            row_indices=[0] if kept else [], inputs=[rows[at]] if kept else [],
            outputs=[block.outputs[at]] if kept else [],
            probabilities=(None if scores is None else [] if not kept
                           else None if scores[at] is None else [scores[at]]),
            latency_ms=float(table["latency"][n]),
            routing_key=block.routing_keys[n] if block.routing_keys else "")
        log.block_id = block.pk
        found.append(log)
    return found


def find(request_id: str):
    """The blocks that may hold `request_id`: those around its time that name it."""
    at = request_id_time(request_id)
    if at is None:
        return PredictionLogBlock.objects.none()
    return PredictionLogBlock.objects.filter(
        created_at__gte=at - LOOKUP_MARGIN - MAX_SPAN, created_at__lte=at + LOOKUP_MARGIN,
        request_ids__contains=request_id)


def window_blocks(version, since, until):
    """The blocks that may hold requests of [since, until): found by the (version, created_at)
    index, since no block spans more than MAX_SPAN."""
    return PredictionLogBlock.objects.filter(
        version=version, created_at__gte=since - MAX_SPAN, created_at__lt=until,
        last_at__gte=since)


def in_window(table: np.ndarray, since, until) -> np.ndarray:
    """Which of a block's requests fall in [since, until)."""
    return (table["at"] >= micros(since)) & (table["at"] < micros(until))


def select_rows(blob, chosen: np.ndarray) -> bytes:
    """Packed rows: those of `blob` that `chosen` (one flag per row) marks."""
    return pack_rows([row for row, keep in zip(unpack_rows(blob), chosen, strict=True) if keep],
                     kinds=unpack_parts(blob)[0])
