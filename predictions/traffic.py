"""A version's traffic in a window, read from the prediction logs for monitoring.

Registered as `registry.traffic.sources[0]` when the app starts. Reads what the caller asks
for (`parts`) and nothing more; input rows are read newest first, in chunks, and turned into
one numpy array per feature chunk by chunk, so memory holds arrays, not rows of Python
objects, and at most `max_rows` of them.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.db.models import Count, Sum

from predictions.models import ErrorKind, Feedback, PredictionError, PredictionLog
from registry.traffic import ERRORS, FEEDBACK, INPUTS, LATENCY, OUTPUTS, Labelled, Traffic

NUMERIC = {"float64", "float32", "int64", "int32", "bool"}
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
        traffic.labelled = _labelled(logs)
    return traffic


def _read_rows(traffic: Traffic, logs, version, parts, max_rows: int) -> None:
    columns = version.signature or [{"name": n, "dtype": "float64"} for n in version.features]
    names = [c["name"] for c in columns]
    numeric = [c["dtype"] in NUMERIC for c in columns]
    want_inputs, want_outputs = INPUTS in parts, OUTPUTS in parts
    fields = ["inputs"] if want_inputs else []
    fields += ["outputs"] if want_outputs else []
    chunks: dict[str, list[np.ndarray]] = defaultdict(list)
    pending_inputs, pending_outputs = [], []
    kept = 0

    def convert() -> None:
        if pending_inputs:
            if all(numeric):
                matrix = np.asarray(pending_inputs, dtype=np.float64)
                for i, name in enumerate(names):
                    chunks[name].append(matrix[:, i])
            else:
                matrix = np.asarray(pending_inputs, dtype=object)
                for i, name in enumerate(names):
                    column = matrix[:, i]
                    chunks[name].append(column.astype(np.float64) if numeric[i]
                                        else column.astype(str))
            pending_inputs.clear()
        if pending_outputs:
            chunks["__outputs__"].append(np.asarray(pending_outputs))
            pending_outputs.clear()

    # Newest first: with more than max_rows in the window, the most recent rows count.
    for record in logs.order_by("-created_at", "-id").values_list(*fields).iterator(
            chunk_size=2000):
        inputs = record[0] if want_inputs else None
        outputs = record[-1] if want_outputs else None
        n = len(inputs) if inputs is not None else len(outputs)
        if kept + n > max_rows:
            traffic.truncated = True
            break
        kept += n
        if inputs is not None:
            pending_inputs.extend(inputs)
        if outputs is not None:
            pending_outputs.extend(outputs)
        if len(pending_inputs) >= CHUNK_ROWS or len(pending_outputs) >= CHUNK_ROWS:
            convert()
    convert()
    traffic.logged_rows = kept
    if want_inputs:
        traffic.columns = {name: np.concatenate(chunks[name]) if chunks[name]
                           else np.empty(0) for name in names}
    if want_outputs:
        traffic.predictions = (np.concatenate(chunks["__outputs__"])
                               if chunks["__outputs__"] else np.empty(0))


def _labelled(logs) -> Labelled | None:
    """Rows with feedback, matched to what this version answered for them."""
    feedback = defaultdict(dict)
    for request_id, row, actual in Feedback.objects.filter(
            request_id__in=logs.values("request_id")).values_list(
            "request_id", "row_index", "actual").iterator(chunk_size=5000):
        feedback[request_id][row] = actual
    if not feedback:
        return None
    actual, predicted, probabilities = [], [], []
    for request_id, indices, outputs, scores in logs.filter(
            request_id__in=Feedback.objects.values("request_id")).values_list(
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
    usable = all(p is not None for p in probabilities)
    return Labelled(actual=np.asarray(actual, dtype=object),
                    predicted=np.asarray(predicted, dtype=object),
                    probabilities=np.asarray(probabilities, dtype=np.float64) if usable else None)
