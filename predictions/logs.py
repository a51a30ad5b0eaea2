"""Prediction logs, written off the response path.

A request adds one unsaved PredictionLog to an in-process buffer; a background thread
bulk-inserts the buffer every PREDICTION_LOG_FLUSH_SECONDS (and at exit). No database round
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

import numpy as np
from django.conf import settings
from django.db import DatabaseError, transaction
from django.utils import timezone

from predictions.models import PredictionLog

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


def _rows(array, indices) -> list:
    if array is None:
        return None
    picked = np.asarray(array)[indices]
    return picked.tolist()


def record(*, request_id, model_id, version_id, route, user, protocol, matrix, predictions,
           probabilities, latency_ms, routing_key="") -> None:
    indices = sample_indices(len(matrix), settings.PREDICTION_LOG_SAMPLE_RATE, request_id)
    _buffer.put(PredictionLog(
        request_id=request_id, model_id=model_id, version_id=version_id, route=route,
        caller=user if getattr(user, "pk", None) else None,
        caller_name=user.get_username() if getattr(user, "pk", None) else "",
        protocol=protocol, created_at=timezone.now(), n_rows=len(matrix),
        row_indices=indices.tolist(), inputs=_rows(matrix, indices),
        outputs=_rows(predictions, indices), probabilities=_rows(probabilities, indices),
        latency_ms=round(latency_ms, 3), routing_key=routing_key[:200],
    ))
    if settings.PREDICTION_LOG_BACKGROUND:
        _ensure_thread()


def flush() -> int:
    """Write everything buffered (the background thread's job; tests call it directly)."""
    batch = []
    while True:
        try:
            batch.append(_buffer.get_nowait())
        except queue.Empty:
            break
    if not batch:
        return 0
    try:
        with transaction.atomic():
            PredictionLog.objects.bulk_create(batch, batch_size=500)
        return len(batch)
    except DatabaseError:
        logger.exception("bulk insert of %d prediction logs failed; trying them one by one",
                         len(batch))
    # One bad row (or a lost connection) must not take the rest of the batch with it.
    written = 0
    for entry in batch:
        try:
            with transaction.atomic():
                entry.save(force_insert=True)
            written += 1
        except DatabaseError:
            logger.exception("prediction log of request %s could not be written; dropped",
                             entry.request_id)
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
