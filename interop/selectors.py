"""Named reads for the MLflow API, every one scoped to its caller (registry.access): a model
the caller may not see does not exist for them."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from core.errors import ApplicationError
from interop import rules
from interop.models import ModelAlias
from registry import access
from registry.models import ModelVersion, RegisteredModel, Stage


def _missing_model(name: str) -> ApplicationError:
    return ApplicationError(f"Registered Model with name={name} not found", status_code=404,
                            code="not_found")


def _missing_version(name: str, version) -> ApplicationError:
    return ApplicationError(f"Model Version (name={name}, version={version}) not found",
                            status_code=404, code="not_found")


def _versions() -> QuerySet[ModelVersion]:
    return (ModelVersion.objects.select_related("model", "created_by")
            .prefetch_related("files", "aliases"))


def model_list(*, user) -> QuerySet[RegisteredModel]:
    return (access.visible_models(user).select_related("owner", "team")
            .prefetch_related(Prefetch("versions", queryset=_versions()),
                              Prefetch("aliases", queryset=ModelAlias.objects
                                       .select_related("version"))))


def model_get(name, *, user) -> RegisteredModel:
    found = model_list(user=user).filter(name=str(name or "")).first()
    if found is None:
        raise _missing_model(name)
    return found


def version_list(*, user) -> QuerySet[ModelVersion]:
    return _versions().filter(model__in=access.visible_models(user))


def version_get(name, number, *, user) -> ModelVersion:
    """A version by its MLflow number ("3")."""
    text = str(number or "").strip()
    if not text.isdigit() or len(text) > 9:
        raise ApplicationError("a version number (1, 2, 3...)", field="version")
    found = version_list(user=user).filter(model__name=str(name or ""), number=int(text)).first()
    if found is None:
        model_get(name, user=user)  # the model's own 404 first
        raise _missing_version(name, text)
    return found


def version_by_alias(name, alias: str, *, user) -> ModelVersion:
    model = model_get(name, user=user)
    if rules.routes_traffic(alias):
        found = version_list(user=user).filter(model=model, stage=Stage.PRODUCTION).first()
    else:
        found = version_list(user=user).filter(model=model, aliases__alias=alias).first()
    if found is None:
        raise ApplicationError(f"Registered model alias {alias} not found (model {name}"
                               + (", which has no version in production)" if
                                  rules.routes_traffic(alias) else ")"),
                               status_code=404, code="not_found")
    return found
