"""The MLflow-facing rules, stated once: which aliases route traffic, what an alias may be
called, and who may download which version as an MLflow model.

- `champion` and `production` route traffic: they always name the production version and are
  never stored. Setting one to another version *asks for that version's promotion* through
  governance (`transition_request`: an approval request under four eyes, or a deployment
  where the policy wants none); the alias follows once the version is in production.
  Deleting one is refused: take a version out of production through a stage change.
- Every other alias is a free label (`challenger`, `candidate`, ...), stored per model, set
  and deleted by the model's team (or an admin), each change audited. A label routes nothing:
  loading through it follows the download rule below like any other version.
- Downloading a version's files as an MLflow model deserialises it in the caller's process:
  a production version, for anyone who may see the model; any other version only for the
  people of the model's team (data scientists, approvers) and admins, who are trusting their
  own unapproved code, as with the prediction API's non-production versions
  (`roles.PREDICT_ANY_VERSION_ROLES`). Service accounts load production only.
"""

from __future__ import annotations

import re

from core import roles
from core.errors import ApplicationError
from registry import access
from registry.models import ModelVersion, Stage

ROUTING_ALIASES = frozenset({"champion", "production"})
ALIAS_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
# MLflow reserves these: `models:/<name>/latest` and `models:/<name>/v3`-like spellings.
_RESERVED = re.compile(r"^(latest|v\d+)$")


def alias_name(raw) -> str:
    """The alias as stored and compared: lower case (MLflow clients write `Champion` too)."""
    alias = raw.strip().lower() if isinstance(raw, str) else ""
    if not ALIAS_RE.fullmatch(alias):
        raise ApplicationError("1-64 letters, digits, '_', '.' or '-', starting with a letter "
                               "or digit", field="alias")
    if _RESERVED.fullmatch(alias):
        raise ApplicationError(f"{alias!r} is reserved by MLflow", field="alias")
    return alias


def routes_traffic(alias: str) -> bool:
    return alias in ROUTING_ALIASES


def download_refusal(user, version: ModelVersion) -> str | None:
    """Why `user` may not download `version` as an MLflow model, or None."""
    if version.integrity_failed_at is not None:
        return (f"{version} is not served: a file failed its sha256 check; an operator has "
                "been alerted")
    if version.stage == Stage.PRODUCTION or (
            roles.has_role(user, roles.PREDICT_ANY_VERSION_ROLES)
            and access.may_act(user, version.model)):
        return None
    return (f"{version} is in {version.stage}: four eyes have not approved it, so only the "
            f"people of {version.model.name}'s team may download it")
