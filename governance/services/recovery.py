"""Finishing what a dead worker or a lost message left behind (the periodic task)."""

from __future__ import annotations

import logging

from governance.services import deployments, validations

logger = logging.getLogger(__name__)


def interrupted_recover(*, older_than_seconds: int = 120) -> list:
    """Finish deployments and validations a dead worker or a lost message left behind (the
    periodic task)."""
    done = deployments.deployment_recover(older_than_seconds=older_than_seconds)
    return done + validations.validation_recover(older_than_seconds=max(older_than_seconds, 900))
