"""Setting and deleting MLflow aliases (interop.rules says which alias means what)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from core import audit
from core.errors import ApplicationError
from governance import services as governance
from interop import rules
from interop.models import ModelAlias
from registry import access
from registry.models import ModelVersion, RegisteredModel, Stage


@dataclass
class AliasOutcome:
    alias: str
    version: ModelVersion
    changed: bool = False
    # A routing alias set to a version not in production: what governance made of the ask.
    transition: governance.TransitionOutcome | None = None


def _frozen(row: ModelAlias | None) -> dict | None:
    if row is None:
        return None
    return {"alias": row.alias, "version": row.version.number, "semver": row.version.version}


def alias_set(*, model: RegisteredModel, alias: str, version: ModelVersion, actor
              ) -> AliasOutcome:
    """Point `alias` at `version`. A routing alias asks for the version's promotion to
    production instead (an approval request, as a stage change would)."""
    alias = rules.alias_name(alias)
    if rules.routes_traffic(alias):
        if version.stage == Stage.PRODUCTION:
            return AliasOutcome(alias, version)
        outcome = governance.transition_request(
            version=version, to_stage=Stage.PRODUCTION, actor=actor,
            reason=f"MLflow: alias {alias!r} set to version {version.number} "
                   f"({version.version})")
        return AliasOutcome(alias, version, changed=True, transition=outcome)
    access.require_action(actor, model, "set its aliases", attempted=f"alias.set {alias}")
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        row = ModelAlias.objects.select_related("version").filter(model=model, alias=alias).first()
        if row is not None and row.version_id == version.pk:
            return AliasOutcome(alias, version)
        before = _frozen(row)
        if row is None:
            row = ModelAlias(model=model, alias=alias)
        row.version, row.set_by = version, actor
        row.save()
        audit.record(action="alias.set", actor=actor, subject=model, before=before,
                     after=_frozen(row))
    return AliasOutcome(alias, version, changed=True)


def alias_delete(*, model: RegisteredModel, alias: str, actor) -> None:
    alias = rules.alias_name(alias)
    if rules.routes_traffic(alias):
        raise ApplicationError(
            f"{alias!r} follows the production version and cannot be deleted: take the version "
            "out of production through a stage change (it needs approval)", field="alias")
    access.require_action(actor, model, "delete its aliases", attempted=f"alias.delete {alias}")
    with transaction.atomic(durable=True):
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        row = ModelAlias.objects.select_related("version").filter(model=model, alias=alias).first()
        if row is None:
            raise ApplicationError(f"Registered model alias {alias} not found (model "
                                   f"{model.name})", status_code=404, code="not_found")
        before = _frozen(row)
        row.delete()
        audit.record(action="alias.deleted", actor=actor, subject=model, before=before)
