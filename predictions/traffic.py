"""A version's traffic in a window, read from the prediction logs: what monitoring judges.

`window` reads what the caller asks for (`parts`) and nothing more; input rows are read newest first, in chunks of about
CHUNK_ROWS rows, and turned into one numpy array per feature chunk by chunk, so memory holds
arrays, not every row as Python objects, and at most `max_rows` rows.
"""

from __future__ import annotations

import gc
import heapq
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import orjson
from django.db.models import BinaryField, Count, Sum, TextField
from django.db.models.functions import Cast

from predictions import blocks, fields
from predictions.fields import join_packed, packed_row_count
from predictions.models import (
    ErrorKind,
    Feedback,
    PredictionError,
    PredictionLog,
)

# Parts of a window a caller may ask for: each costs a read of the logs.
INPUTS, OUTPUTS, LATENCY, ERRORS, FEEDBACK = "inputs", "outputs", "latency", "errors", "feedback"


@dataclass
class Labelled:
    """Answered rows whose true outcome came back as feedback."""

    actual: np.ndarray
    predicted: np.ndarray
    probabilities: np.ndarray | None = None  # rows of class probabilities, where logged


@dataclass
class Traffic:
    requests: int = 0  # answered requests
    rows: int = 0  # answered rows (logged or not)
    logged_rows: int = 0  # rows whose inputs and outputs the log kept (the sampling rate)
    columns: dict[str, np.ndarray] = field(default_factory=dict)
    predictions: np.ndarray | None = None
    latency_ms: np.ndarray | None = None  # one per answered request
    failed: int = 0  # requests the model could not answer (5xx)
    rejected: int = 0  # requests refused for bad input (4xx)
    labelled: Labelled | None = None
    truncated: bool = False  # more rows than a pass reads: the newest were kept


CHUNK_ROWS = 20_000


def window(version, since, until, *, parts: set[str], max_rows: int) -> Traffic:
    logs = PredictionLog.objects.filter(version=version, created_at__gte=since,
                                        created_at__lt=until)
    totals = logs.aggregate(requests=Count("id"), rows=Sum("n_rows"))
    traffic = Traffic(requests=totals["requests"], rows=totals["rows"] or 0)
    # Single-row requests stored in blocks: their per-request columns, for the counts.
    found = blocks.window_blocks(version, since, until)
    stored = []
    for pk, raw in found.values_list("id", "requests").iterator(chunk_size=500):
        table = blocks.meta_of(raw)
        inside = blocks.in_window(table, since, until)
        if inside.any():
            stored.append((pk, table, inside))
    in_blocks = sum(int(inside.sum()) for _pk, _table, inside in stored)
    traffic.requests += in_blocks
    traffic.rows += in_blocks  # one row per request
    if LATENCY in parts and traffic.requests:
        latencies = [np.fromiter(logs.values_list("latency_ms", flat=True),
                                 dtype=np.float64, count=totals["requests"])]
        latencies += [table["latency"][inside] for _pk, table, inside in stored]
        traffic.latency_ms = np.concatenate(latencies)
    if ERRORS in parts:
        counts = dict(PredictionError.objects.filter(
            version=version, created_at__gte=since, created_at__lt=until,
        ).values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
        traffic.failed = counts.get(ErrorKind.FAILED, 0)
        traffic.rejected = counts.get(ErrorKind.REJECTED, 0)
    if (INPUTS in parts or OUTPUTS in parts) and traffic.requests:
        _read_rows(traffic, logs, found, stored, version, parts, max_rows)
    if FEEDBACK in parts and traffic.requests:
        traffic.labelled = _labelled(logs, found, stored, since)
    return traffic


def _read_rows(traffic: Traffic, logs, found, stored, version, parts, max_rows: int) -> None:
    names = [c["name"] for c in version.columns]
    want_inputs, want_outputs = INPUTS in parts, OUTPUTS in parts
    # Raw values, not the fields' Python ones: packed input bytes go to numpy as they are, and
    # the outputs' JSON is parsed a chunk at a time with one orjson call.
    raw = {}
    if want_inputs:
        raw["inputs_raw"] = Cast("inputs", BinaryField())
    if want_outputs:
        raw["outputs_raw"] = Cast("outputs", TextField())
    in_blocks = sum(int(inside.sum()) for _pk, _table, inside in stored)
    row_logs = traffic.requests - in_blocks
    per_log = max(1, (traffic.rows - in_blocks) // max(1, row_logs))
    chunk_logs = max(1, CHUNK_ROWS // per_log)
    records = logs.order_by("-created_at", "-id").annotate(**raw).values_list(
        "created_at", *raw).iterator(chunk_size=chunk_logs) if row_logs else iter(())
    # Newest first across both layouts: a block counts at its first request's time.
    merged = heapq.merge(records, _block_records(found, stored, raw),
                         key=lambda record: record[0], reverse=True)
    chunks: dict[str, list[np.ndarray]] = defaultdict(list)
    kept = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many short-lived objects, no cycles: collection passes only cost time
    try:
        for chunk in _batched(merged, chunk_logs):
            outputs = (orjson.loads("[" + ",".join(record[-1] for record in chunk) + "]")
                       if want_outputs else None)
            sizes = ([packed_row_count(record[1]) for record in chunk] if want_inputs
                     else [len(rows) for rows in outputs])
            take = len(chunk)
            # Newest first: with more than max_rows in the window, the most recent rows count.
            while take and kept + sum(sizes[:take]) > max_rows:
                take -= 1
                traffic.truncated = True
            chosen = chunk[:take]
            room = max_rows - kept - sum(sizes[:take])
            if traffic.truncated and room and isinstance(chunk[take], BlockRecord):
                # A block is many requests: its newest rows fill what room is left.
                chosen.append(chunk[take].newest(room))
                outputs = [*outputs[:take], orjson.loads(chosen[-1][-1])] if outputs else None
                sizes = [*sizes[:take], room]
                take += 1
            if want_inputs and take:
                _add_inputs(chunks, names, [record[1] for record in chosen])
            if want_outputs and take:
                chunks["__outputs__"].append(
                    np.asarray(list(chain.from_iterable(outputs[:take]))))
            kept += sum(sizes[:take])
            if traffic.truncated:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    traffic.logged_rows = kept
    if want_inputs:
        traffic.columns = {name: np.concatenate(chunks[name]) if chunks[name] else np.empty(0)
                           for name in names}
    if want_outputs:
        traffic.predictions = (np.concatenate(chunks["__outputs__"])
                               if chunks["__outputs__"] else np.empty(0))


class BlockRecord(tuple):
    """(time, packed inputs, outputs JSON) of a block's requests inside a window, as a row
    log's record is, that can also give only its newest rows."""

    def newest(self, count: int) -> tuple:
        at, *values = self
        if isinstance(values[0], str):  # outputs only
            return at, fields.dumps(orjson.loads(values[0])[-count:])
        chosen = np.zeros(packed_row_count(values[0]), dtype=bool)
        chosen[-count:] = True
        return (at, blocks.select_rows(values[0], chosen),
                *(fields.dumps(orjson.loads(v)[-count:]) for v in values[1:]))


def _block_records(found, stored, raw: dict):
    """The window's blocks newest first, each one record of its requests in the window."""
    inside_of = {pk: (table, inside) for pk, table, inside in stored}
    if not inside_of:
        return
    for pk, at, *values in found.order_by("-created_at", "-id").annotate(**raw).values_list(
            "id", "created_at", *raw).iterator(chunk_size=50):
        if pk not in inside_of:
            continue
        table, inside = inside_of[pk]
        if not inside.all():  # the window's edge cuts the block: its requests inside
            chosen = inside[table["kept"].astype(bool)]
            values = [blocks.select_rows(v, chosen) if not isinstance(v, str) else
                      fields.dumps([o for o, keep in zip(orjson.loads(v), chosen, strict=True)
                                    if keep]) for v in values]
        yield BlockRecord((at, *values))


def _add_inputs(chunks, names, blobs) -> None:
    """Packed logs to one array per feature: the numeric bytes joined and read at once."""
    joined = join_packed(blobs)
    if joined is None:
        return
    kinds, numeric, text_rows = joined
    numeric_at = [i for i, kind in enumerate(kinds) if kind == ord("f")]
    text_at = [i for i, kind in enumerate(kinds) if kind == ord("t")]
    if text_at:
        words = np.asarray(text_rows, dtype=object).reshape(-1, len(text_at))
        for j, i in enumerate(text_at):
            chunks[names[i]].append(words[:, j].astype(str))
    if numeric_at:
        matrix = np.frombuffer(numeric, dtype="<f8").reshape(-1, len(numeric_at))
        for j, i in enumerate(numeric_at):
            chunks[names[i]].append(matrix[:, j])


def _labelled_blocks(found, stored, recent, actual, predicted, probabilities) -> None:
    """The block-stored part of `_labelled`: a block's request has one row, row 0."""
    truths = dict(recent.filter(row_index=0).values_list("request_id", "actual").iterator(
        chunk_size=5000))
    if not truths:
        return
    inside_of = {pk: (table, inside) for pk, table, inside in stored}
    for pk, ids, outputs, scores in found.values_list(
            "id", "request_ids", "outputs", "probabilities").iterator(chunk_size=50):
        if pk not in inside_of:
            continue
        table, inside = inside_of[pk]
        position = np.cumsum(table["kept"]) - 1
        for n, request_id in enumerate(ids.split(" ")):
            truth = truths.get(request_id, _MISSING)
            if truth is _MISSING or not inside[n] or not table["kept"][n]:
                continue
            actual.append(truth)
            predicted.append(outputs[position[n]])
            probabilities.append(scores[position[n]] if scores else None)


_MISSING = object()


def _batched(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _labelled(logs, found, stored, since) -> Labelled | None:
    """Rows with feedback, matched to what this version answered for them."""
    # Feedback comes after its prediction: none since the window began, none for it.
    recent = Feedback.objects.filter(created_at__gte=since)
    if not recent.exists():
        return None
    actual, predicted, probabilities = [], [], []
    if stored:
        _labelled_blocks(found, stored, recent, actual, predicted, probabilities)
    feedback = defaultdict(dict)
    for request_id, row, actual_value in recent.filter(
            request_id__in=logs.values("request_id")).values_list(
            "request_id", "row_index", "actual").iterator(chunk_size=5000):
        feedback[request_id][row] = actual_value
    for request_id, indices, outputs, scores in logs.filter(
            request_id__in=recent.values("request_id")).values_list(
            "request_id", "row_indices", "outputs", "probabilities").iterator(
            chunk_size=2000) if feedback else ():
        where = {row: position for position, row in enumerate(indices)}
        for row, truth in feedback[request_id].items():
            position = where.get(row)
            if position is None:  # that row was not kept by the sampling rate
                continue
            actual.append(truth)
            predicted.append(outputs[position])
            probabilities.append(scores[position] if scores else None)
    if not actual:
        return None
    scores = None
    if all(isinstance(p, list) for p in probabilities):
        try:
            scores = np.asarray(probabilities, dtype=np.float64)
        except (TypeError, ValueError):  # e.g. an ONNX graph's {class: probability} maps
            scores = None
    return Labelled(actual=np.asarray(actual, dtype=object),
                    predicted=np.asarray(predicted, dtype=object), probabilities=scores)
