"""Named reads of the registry."""

from __future__ import annotations

from django.db.models import Count, OuterRef, Prefetch, QuerySet, Subquery

from core.errors import ApplicationError
from registry import access, signals
from registry.models import ArtifactFile, ModelVersion, RegisteredModel, Stage
from registry.versioning import InvalidVersion, parse_version

SEMVER_DESC = ("-major", "-minor", "-patch", "-prerelease_key")


def model_list(*, user) -> QuerySet[RegisteredModel]:
    """The models `user` may see (registry.access), with their version figures."""
    versions = ModelVersion.objects.filter(model=OuterRef("pk"))
    return (
        access.visible_models(user).select_related("owner", "team")
        .annotate(
            version_count=Count("versions", distinct=True),
            latest_version=Subquery(versions.order_by(*SEMVER_DESC).values("version")[:1]),
            production_version=Subquery(
                versions.filter(stage=Stage.PRODUCTION).values("version")[:1]
            ),
        )
    )


def model_get(name: str, *, user) -> RegisteredModel:
    """One model `user` may see; any other is a 404, as if it did not exist."""
    try:
        return model_list(user=user).get(name=name)
    except RegisteredModel.DoesNotExist:
        raise access.not_found(name) from None


def model_must_exist(name: str, *, user) -> None:
    if not access.visible_models(user).filter(name=name).exists():
        raise access.not_found(name)


def version_list(*, user) -> QuerySet[ModelVersion]:
    return (ModelVersion.objects.filter(model__in=access.visible_models(user))
            .select_related("model__team", "created_by").prefetch_related("files"))


# Columns no API answer about a version shows: a page of versions leaves them in the database.
UNSHOWN_VERSION_FIELDS = ("model_card", "evaluation", "lifecycle", "integrity_problem")


def version_listing(*, user) -> QuerySet[ModelVersion]:
    """version_list for the API's pages of versions: each row's files as a plain list
    (`file_list`, one query for the page: a related manager per row cost more than the
    query), without the columns the answer does not show."""
    return (ModelVersion.objects.filter(model__in=access.visible_models(user))
            .select_related("model", "created_by").defer(*UNSHOWN_VERSION_FIELDS)
            .prefetch_related(Prefetch("files", to_attr="file_list")))


def version_get(model_name: str, version: str, *, user) -> ModelVersion:
    try:
        return version_list(user=user).get(model__name=model_name, version=version)
    except ModelVersion.DoesNotExist:
        model_must_exist(model_name, user=user)
        raise ApplicationError(
            f"{model_name} has no version {version!r}", status_code=404, code="not_found"
        ) from None


def versions_passed_validation(versions: QuerySet[ModelVersion]) -> QuerySet[ModelVersion]:
    """Those of `versions` that passed validation (their latest finished run passed). The
    registry does not judge validation: it asks (registry.signals.passed_validation)."""
    for _receiver, answer in signals.passed_validation.send(sender=ModelVersion,
                                                            versions=versions):
        if answer is not None:
            return answer
    return versions.none()


def version_resolve(name: str, version: str | None = None,
                    stage: str | None = None) -> ModelVersion:
    """The version `load_model` means.

    - an exact version (`1.2.0`, or `v1.2.0` as the teams' folders spell it);
    - `"latest"`: the highest SemVer that passed validation (not merely the highest one
      registered: an unvalidated or failed version is never "latest");
    - None: the highest SemVer, whatever its validation (with `stage="production"`: the
      production version).

    With `stage`, only versions in that stage count; an exact version in another stage is an
    error.
    """
    if stage is not None and stage not in Stage.values:
        raise ApplicationError(f"must be one of {', '.join(Stage.values)}", field="stage")
    candidates = (ModelVersion.objects.filter(model__name=name)
                  .select_related("model", "created_by").prefetch_related("files"))
    where = f" in {stage}" if stage else ""
    if stage is not None:
        candidates = candidates.filter(stage=stage)
    if version is None or version == "latest":
        if version == "latest":
            candidates = versions_passed_validation(candidates)
            where = f"{where} that passed validation"
        found = candidates.order_by(*SEMVER_DESC).first()
        if found is None:
            raise ApplicationError(
                f"{name!r} has no version{where}", status_code=404, code="not_found"
            )
        return found
    if version[:1] in ("v", "V") and version[1:2].isdigit():
        version = version[1:]  # the spelling of the model directories teams keep (v1.0.0)
    try:
        parse_version(version)
    except InvalidVersion as exc:
        raise ApplicationError(str(exc), field="version") from None
    found = candidates.filter(version=version).first()
    if found is None:
        raise ApplicationError(
            f"{name!r} has no version {version!r}{where}", status_code=404, code="not_found"
        )
    return found


def file_get(version: ModelVersion, filename: str) -> ArtifactFile:
    for file in version.files.all():
        if file.filename == filename:
            return file
    raise ApplicationError(
        f"{version} has no file named {filename!r}", status_code=404, code="not_found"
    )


def import_state() -> tuple[dict[str, dict[str, str | None]], dict[str, str]]:
    """For planning an import (registry.importing): every model's registered versions, with
    the import key of those imported, and each import key's "model version". Not scoped: an
    admin's command reads it."""
    existing: dict[str, dict[str, str | None]] = {}
    for name, version in ModelVersion.objects.values_list("model__name", "version"):
        existing.setdefault(name, {})[version] = None
    imported = {}
    for name, version, lifecycle in ModelVersion.objects.filter(
            lifecycle__has_key="imported").values_list("model__name", "version", "lifecycle"):
        key = (lifecycle.get("imported") or {}).get("key")
        if key:
            existing[name][version] = key
            imported[key] = f"{name} {version}"
    return existing, imported
