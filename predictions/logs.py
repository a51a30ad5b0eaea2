"""Prediction logs, written off the response path.

A request adds what it answered, arrays untouched, to an in-process buffer; a background
thread turns them into PredictionLog rows (single-row requests into PredictionLogBlock rows,
predictions.blocks) and bulk-inserts them every
PREDICTION_LOG_FLUSH_SECONDS (and at exit). No database round
trip is added to a response. What a crash can lose: the last flush interval's logs of that
process. Tests flush synchronously (`flush()`), through the same code.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from core.errors import scrub_paths
from predictions import blocks
from predictions.fields import column_kinds, pack_rows
from predictions.models import PredictionError, PredictionLog, PredictionLogBlock

logger = logging.getLogger(__name__)
_buffer: queue.SimpleQueue = queue.SimpleQueue()
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()


def sample_indices(n_rows: int, rate: float, request_id: str) -> np.ndarray:
    """Which rows a log keeps: all at rate 1.0, else a reproducible random share."""
    if rate >= 1.0:
        return np.arange(n_rows)
    seed = int.from_bytes(hashlib.sha256(request_id.encode()).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    return np.flatnonzero(rng.random(n_rows) < rate)


def _rows(array, indices):
    """The kept rows, still an array: the log's field encodes arrays itself."""
    if array is None:
        return None
    array = np.asarray(array)
    return array if len(indices) == len(array) else array[indices]


@dataclass
class Answered:
    """What a request leaves in the buffer: its arrays as they are. Turning them into JSON
    lists (a few ms for a 1,000-row batch) is the writer thread's work, not the response's."""

    request_id: str
    model_id: int
    version_id: int
    route: str
    caller_id: int | None
    caller_name: str
    protocol: str
    created_at: datetime
    matrix: np.ndarray
    predictions: np.ndarray
    probabilities: np.ndarray | None
    latency_ms: float
    routing_key: str

    def to_row(self) -> PredictionLog:
        indices = sample_indices(len(self.matrix), settings.PREDICTION_LOG_SAMPLE_RATE,
                                 self.request_id)
        return PredictionLog(
            request_id=self.request_id, model_id=self.model_id, version_id=self.version_id,
            route=self.route, caller_id=self.caller_id, caller_name=self.caller_name,
            protocol=self.protocol, created_at=self.created_at, n_rows=len(self.matrix),
            row_indices=indices,
            # Column kinds from the whole request: the kept rows may be none of them.
            inputs=pack_rows(_rows(self.matrix, indices), kinds=column_kinds(self.matrix[:1])),
            outputs=_rows(self.predictions, indices),
            probabilities=_rows(self.probabilities, indices),
            latency_ms=round(self.latency_ms, 3), routing_key=self.routing_key[:200],
        )


def record(*, request_id, model_id, version_id, route, user, protocol, matrix, predictions,
           probabilities, latency_ms, routing_key="") -> None:
    known = getattr(user, "pk", None) is not None
    _buffer.put(Answered(
        request_id=request_id, model_id=model_id, version_id=version_id, route=route,
        caller_id=user.pk if known else None, caller_name=user.get_username() if known else "",
        protocol=protocol, created_at=timezone.now(), matrix=matrix, predictions=predictions,
        probabilities=probabilities, latency_ms=latency_ms, routing_key=routing_key))
    if settings.PREDICTION_LOG_BACKGROUND:
        _ensure_thread()


def record_error(*, request_id, model_id, version_id, kind, status_code, message, user,
                 protocol) -> None:
    known = getattr(user, "pk", None) is not None
    _buffer.put(PredictionError(
        request_id=request_id, model_id=model_id, version_id=version_id, kind=kind,
        status_code=status_code, message=scrub_paths(message)[:500],
        caller_name=user.get_username() if known else "", protocol=protocol,
        created_at=timezone.now()))
    if settings.PREDICTION_LOG_BACKGROUND:
        _ensure_thread()


def flush() -> int:
    """Write everything buffered (the background thread's job; tests call it directly).
    Returns how many prediction logs it wrote (error records are written too)."""
    answered, errors, single = [], [], []
    while True:
        try:
            item = _buffer.get_nowait()
        except queue.Empty:
            break
        if isinstance(item, PredictionError):
            errors.append(item)
            continue
        (single if blocks.is_blocked(item) else answered).append(item)
    batch = _encoded(answered)
    built = []
    if single:
        try:
            built = blocks.build(single)
        except Exception:  # odd arrays among them: each request is logged as its own row
            logger.exception("%d single-row requests could not be stored as blocks",
                             len(single))
            batch.extend(_encoded(single))
    _write(PredictionError, errors)
    written = len(_write(PredictionLog, batch))
    return written + sum(block.n_requests for block in _write(PredictionLogBlock, built))


def _encoded(answered: list) -> list[PredictionLog]:
    rows = []
    for item in answered:
        try:
            rows.append(item.to_row())
        except Exception:  # one request's odd arrays must not lose the others' logs
            logger.exception("prediction log of request %s could not be encoded; dropped",
                             item.request_id)
    return rows


def _write(model, batch: list) -> list:
    """What of `batch` was written."""
    if not batch:
        return []
    try:
        with transaction.atomic():
            model.objects.bulk_create(batch, batch_size=500)
        return batch
    except DatabaseError:
        logger.exception("bulk insert of %d %s rows failed; trying them one by one",
                         len(batch), model.__name__)
    # One bad row (or a lost connection) must not take the rest of the batch with it.
    written = []
    for entry in batch:
        try:
            with transaction.atomic():
                entry.save(force_insert=True)
            written.append(entry)
        except DatabaseError:
            logger.exception("%s of request %s could not be written; dropped",
                             model.__name__, getattr(entry, "request_id", entry.pk))
    return written


def _run() -> None:
    from django.db import close_old_connections

    while True:
        time.sleep(settings.PREDICTION_LOG_FLUSH_SECONDS)
        try:
            close_old_connections()
            flush()
        except Exception:
            logger.exception("could not write prediction logs")


def _ensure_thread() -> None:
    global _thread
    if _thread is not None:
        return
    with _thread_lock:
        if _thread is None:
            _thread = threading.Thread(target=_run, name="prediction-log-writer", daemon=True)
            _thread.start()
            atexit.register(flush)


def discard() -> None:
    """Tests: forget what is buffered."""
    while True:
        try:
            _buffer.get_nowait()
        except queue.Empty:
            return
