"""A version's traffic in a window, read from the prediction logs: what monitoring judges.

`window` reads what the caller asks for (`parts`) and nothing more; input rows are read newest first, in chunks of about
CHUNK_ROWS rows, and turned into one numpy array per feature chunk by chunk, so memory holds
arrays, not every row as Python objects, and at most `max_rows` rows.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import chain

import numpy as np
import orjson
from django.db.models import BinaryField, Count, Sum, TextField
from django.db.models.functions import Cast

from predictions.fields import join_packed, packed_row_count
from predictions.models import ErrorKind, Feedback, PredictionError, PredictionLog

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
    if LATENCY in parts and traffic.requests:
        traffic.latency_ms = np.fromiter(logs.values_list("latency_ms", flat=True),
                                         dtype=np.float64, count=traffic.requests)
    if ERRORS in parts:
        counts = dict(PredictionError.objects.filter(
            version=version, created_at__gte=since, created_at__lt=until,
        ).values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
        traffic.failed = counts.get(ErrorKind.FAILED, 0)
        traffic.rejected = counts.get(ErrorKind.REJECTED, 0)
    if (INPUTS in parts or OUTPUTS in parts) and traffic.requests:
        _read_rows(traffic, logs, version, parts, max_rows)
    if FEEDBACK in parts and traffic.requests:
        traffic.labelled = _labelled(logs, since)
    return traffic


def _read_rows(traffic: Traffic, logs, version, parts, max_rows: int) -> None:
    names = [c["name"] for c in version.columns]
    want_inputs, want_outputs = INPUTS in parts, OUTPUTS in parts
    # Raw values, not the fields' Python ones: packed input bytes go to numpy as they are, and
    # the outputs' JSON is parsed a chunk at a time with one orjson call.
    raw = {}
    if want_inputs:
        raw["inputs_raw"] = Cast("inputs", BinaryField())
    if want_outputs:
        raw["outputs_raw"] = Cast("outputs", TextField())
    per_log = max(1, traffic.rows // max(1, traffic.requests))
    chunk_logs = max(1, CHUNK_ROWS // per_log)
    records = logs.order_by("-created_at", "-id").annotate(**raw).values_list(
        "n_rows", *raw)
    blocks: dict[str, list[np.ndarray]] = defaultdict(list)
    kept = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many short-lived objects, no cycles: collection passes only cost time
    try:
        for chunk in _batched(records.iterator(chunk_size=chunk_logs), chunk_logs):
            outputs = (orjson.loads("[" + ",".join(record[-1] for record in chunk) + "]")
                       if want_outputs else None)
            sizes = ([packed_row_count(record[1]) for record in chunk] if want_inputs
                     else [len(rows) for rows in outputs])
            take = len(chunk)
            # Newest first: with more than max_rows in the window, the most recent rows count.
            while take and kept + sum(sizes[:take]) > max_rows:
                take -= 1
                traffic.truncated = True
            if want_inputs and take:
                _add_inputs(blocks, names, [record[1] for record in chunk[:take]])
            if want_outputs and take:
                blocks["__outputs__"].append(
                    np.asarray(list(chain.from_iterable(outputs[:take]))))
            kept += sum(sizes[:take])
            if traffic.truncated:
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    traffic.logged_rows = kept
    if want_inputs:
        traffic.columns = {name: np.concatenate(blocks[name]) if blocks[name] else np.empty(0)
                           for name in names}
    if want_outputs:
        traffic.predictions = (np.concatenate(blocks["__outputs__"])
                               if blocks["__outputs__"] else np.empty(0))


def _add_inputs(blocks, names, blobs) -> None:
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
            blocks[names[i]].append(words[:, j].astype(str))
    if numeric_at:
        matrix = np.frombuffer(numeric, dtype="<f8").reshape(-1, len(numeric_at))
        for j, i in enumerate(numeric_at):
            blocks[names[i]].append(matrix[:, j])


def _batched(iterable, size: int):
    batch = []
    for item in iterable:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _labelled(logs, since) -> Labelled | None:
    """Rows with feedback, matched to what this version answered for them."""
    # Feedback comes after its prediction: none since the window began, none for it.
    recent = Feedback.objects.filter(created_at__gte=since)
    if not recent.exists():
        return None
    feedback = defaultdict(dict)
    for request_id, row, actual in recent.filter(
            request_id__in=logs.values("request_id")).values_list(
            "request_id", "row_index", "actual").iterator(chunk_size=5000):
        feedback[request_id][row] = actual
    if not feedback:
        return None
    actual, predicted, probabilities = [], [], []
    for request_id, indices, outputs, scores in logs.filter(
            request_id__in=recent.values("request_id")).values_list(
            "request_id", "row_indices", "outputs", "probabilities").iterator(chunk_size=2000):
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
