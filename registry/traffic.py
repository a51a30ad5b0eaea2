"""What a version answered in a window of time, for monitoring.

Governance's monitoring asks; the predictions app, which owns the prediction logs and the
feedback, answers. Governance may not import predictions, and both may import the registry,
so the question is asked through `sources`, which the predictions app fills when it starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

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


sources: list[Callable[..., Traffic]] = []


def window(version, since: datetime, until: datetime, *, parts: set[str],
           max_rows: int) -> Traffic:
    """The traffic of `version` with since <= time < until."""
    if not sources:  # the predictions app is not installed: no traffic
        return Traffic()
    return sources[0](version, since, until, parts=parts, max_rows=max_rows)
