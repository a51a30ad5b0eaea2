"""Reads of the prediction logs that have a name."""

from __future__ import annotations

from predictions import blocks
from predictions.models import PredictionLog


def logged_requests(request_id: str, *, models=None) -> list[PredictionLog]:
    """Every log of one request (its answer, and a shadow's), oldest first, whether it is
    stored as its own row or in a block; `models` (a queryset of registered models) limits
    them to those. Block-stored ones are unsaved PredictionLog objects with `block_id` set."""
    rows = PredictionLog.objects.filter(request_id=request_id)
    stored = blocks.find(request_id)
    if models is not None:
        rows = rows.filter(model__in=models)
        stored = stored.filter(model__in=models)
    found = list(rows.select_related("model", "version__model", "caller"))
    for block in stored.select_related("model", "version__model"):
        found += blocks.requests(block, request_id)
    return sorted(found, key=lambda log: (log.created_at, log.pk or 0))
