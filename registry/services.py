"""Every write to the registry goes through one of these functions. (Governance decides
when a version changes stage and moves its folder; `version_stage_set` records the result.)

Each runs in one durable transaction (it may not be nested in another, because it places
files on disk and must know when its rows commit), emits its audit event inside that
transaction, and leaves nothing behind when it fails: no row, and no file or folder.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import Max

from core import audit, roles
from core.errors import ApplicationError, Conflict, Forbidden, Unprocessable
from core.queue import enqueue_on_commit
from registry import access, cards, reference, signals, store
from registry.fields import normalise_tags
from registry.metadata import VersionMetadataSerializer, document_bytes, version_document
from registry.models import (
    ArtifactFile,
    FileRole,
    Framework,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    Stage,
    TaskType,
    Team,
)
from registry.versioning import InvalidVersion, parse_version

# What a framework's model file may be called; preprocessors are always joblib/pickle files.
MODEL_EXTENSIONS = {
    Framework.SKLEARN: (".joblib", ".pkl", ".pickle"),
    Framework.TORCH: (".pt", ".pth", ".ts"),
    Framework.ONNX: (".onnx",),
}
PREPROCESSOR_EXTENSIONS = (".joblib", ".pkl", ".pickle")
MAX_FILES_PER_VERSION = 50
logger = logging.getLogger(__name__)


def _model_snapshot(model: RegisteredModel) -> dict:
    return {
        "name": model.name,
        "description": model.description,
        "task_type": model.task_type,
        "owner": model.owner.get_username(),
        "team": model.team.name,
        "tags": list(model.tags),
        "readers": sorted(model.readers.values_list("username", flat=True)) if model.pk else [],
    }


def _version_snapshot(version: ModelVersion) -> dict:
    return {
        "model": version.model.name,
        "version": version.version,
        "stage": version.stage,
        "framework": version.framework,
        "description": version.description,
        "tags": list(version.tags),
        "metrics": version.metrics,
        "files": {f.filename: f.sha256 for f in version.files.all()},
    }


def _tags(values) -> list[str]:
    try:
        return normalise_tags(list(values))
    except ValueError as exc:
        raise ApplicationError(str(exc), field="tags") from None


def _rewrite_catalogue_on_commit() -> None:
    # A rewrite reads every row (a quarter of a second at 10,000 versions), so a worker does
    # it. If the broker is down the change still stands; `reconcile` rewrites the catalogue.
    enqueue_on_commit("registry.catalogue_rewrite")


# --- registered models ------------------------------------------------------------------------


def model_create(
    *,
    name: str,
    task_type: str,
    owner,
    actor,
    description: str = "",
    tags: Sequence[str] = (),
    team_name: str | None = None,
) -> RegisteredModel:
    """A new model name, owned by one of the actor's teams (registry.access)."""
    team = access.team_for_new_model(actor, team_name)
    try:
        store.validate_model_name(name)
    except store.UnsafeName as exc:
        raise ApplicationError(str(exc), field="name") from None
    if task_type not in TaskType.values:
        raise ApplicationError(
            f"must be one of {', '.join(TaskType.values)}", field="task_type"
        )
    with transaction.atomic(durable=True):
        if RegisteredModel.objects.filter(name=name).exists():
            raise Conflict(f"a model named {name!r} already exists", field="name")
        try:
            with transaction.atomic():
                model = RegisteredModel.objects.create(
                    name=name, task_type=task_type, owner=owner, description=description,
                    tags=_tags(tags), team=team,
                )
        except IntegrityError:
            # Lost a race with a concurrent create of the same name.
            raise Conflict(f"a model named {name!r} already exists", field="name") from None
        audit.record(action="model.created", actor=actor, subject=model, after=_model_snapshot(model))
        _rewrite_catalogue_on_commit()
    return model


def model_update(*, model: RegisteredModel, actor, **changes) -> RegisteredModel:
    """Change description, task_type, tags, owner or team. Stage-like state is not here."""
    allowed = {"description", "task_type", "tags", "owner", "team", "readers"}
    unknown = set(changes) - allowed
    if unknown:
        raise ApplicationError("cannot be changed", field=sorted(unknown)[0])
    if "task_type" in changes and changes["task_type"] not in TaskType.values:
        raise ApplicationError(f"must be one of {', '.join(TaskType.values)}", field="task_type")
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        access.require_action(actor, model, "change it")
        for admin_only in ("team", "readers"):
            if admin_only in changes and not roles.has_role(actor, roles.ADMIN_ROLES):
                raise Forbidden(f"Only an admin changes a model's {admin_only}.")
        before = _model_snapshot(model)
        if "tags" in changes:
            changes["tags"] = _tags(changes["tags"])
        fields = [k for k in ("description", "task_type", "owner", "team", "tags")
                  if k in changes]
        for key in fields:
            setattr(model, key, changes[key])
        if fields:
            model.save(update_fields=[*fields, "updated_at"])
        if "readers" in changes:
            model.readers.set(changes["readers"])
        after = _model_snapshot(model)
        if after != before:
            changed_before, changed_after = audit.changes(before, after)
            audit.record(action="model.updated", actor=actor, subject=model,
                         before=changed_before, after=changed_after)
            _rewrite_catalogue_on_commit()
    return model


def _risk_snapshot(model: RegisteredModel) -> dict:
    return {"risk_tier": model.risk_tier, "risk_reason": model.risk_reason,
            "business_use": model.business_use}


def model_risk_set(*, model: RegisteredModel, actor, risk_tier: str, risk_reason: str,
                   business_use: str | None = None) -> RegisteredModel:
    """Set a model's risk tier, with the reason for it (and its business use, when given).

    The tier chooses the model's policy when it has none of its own (governance.policies),
    so it is an approver's or an admin's decision, of the model's team, and always explained.
    """
    if not access.may_set_risk(actor, model):
        access.require_action(actor, model, "set its risk tier", attempted="model.risk_set")
        raise audit.denied(actor=actor, subject=model, attempted="model.risk_set",
                           message="A model's risk tier is set by approvers and admins.")
    if risk_tier not in RiskTier.values:
        raise ApplicationError(f"must be one of {', '.join(RiskTier.values)}",
                               field="risk_tier")
    risk_reason = (risk_reason or "").strip()
    if not risk_reason:
        raise ApplicationError("say why the model has this tier", field="risk_reason")
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        before = _risk_snapshot(model)
        model.risk_tier, model.risk_reason = risk_tier, risk_reason
        if business_use is not None:
            model.business_use = business_use.strip()
        after = _risk_snapshot(model)
        if after != before:
            model.save(update_fields=["risk_tier", "risk_reason", "business_use",
                                      "updated_at"])
            changed_before, changed_after = audit.changes(before, after)
            audit.record(action="model.risk_set", actor=actor, subject=model,
                         before=changed_before, after=changed_after)
    return model


def team_save(*, team: Team | None, actor, name: str, description: str = "",
              members=()) -> Team:
    """Create a team or change its description and members (admins; audited)."""
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise Forbidden("Only admins manage teams.")
    try:
        store.validate_model_name(name)
    except store.UnsafeName as exc:
        raise ApplicationError(str(exc), field="name") from None

    def snapshot(row):
        return {"name": row.name, "description": row.description,
                "members": sorted(row.members.values_list("username", flat=True))}

    with transaction.atomic(durable=True):
        if team is None:
            if Team.objects.filter(name=name).exists():
                raise Conflict(f"a team named {name!r} already exists", field="name")
            team, before = Team.objects.create(name=name, description=description), None
        else:
            team = Team.objects.select_for_update().get(pk=team.pk)
            before = snapshot(team)
            team.description = description
            team.save(update_fields=["description"])
        team.members.set(members)
        after = snapshot(team)
        if after != before:
            changed_before, changed_after = audit.changes(before, after)
            audit.record(action="team.created" if before is None else "team.changed",
                         actor=actor, subject=team, before=changed_before, after=changed_after)
    return team


# --- versions ---------------------------------------------------------------------------------


def _check_files(framework: str, files: list[store.IncomingFile]) -> None:
    field_of = {FileRole.MODEL: "file", FileRole.PREPROCESSOR: "preprocessor",
                FileRole.OTHER: "file", FileRole.REFERENCE: "reference"}
    if not files or files[0].role != FileRole.MODEL:
        raise ApplicationError("at least one `file` part is required: the model file", field="file")
    if len(files) > MAX_FILES_PER_VERSION:
        raise ApplicationError(f"at most {MAX_FILES_PER_VERSION} files per version", field="file")
    seen = set()
    for incoming in files:
        field = field_of[incoming.role]
        try:
            store.validate_filename(incoming.name)
        except store.UnsafeName as exc:
            raise ApplicationError(f"{incoming.name!r}: {exc}", field=field) from None
        if incoming.name.lower() in seen:
            raise ApplicationError(f"two files are named {incoming.name!r}", field=field)
        seen.add(incoming.name.lower())
        suffix = Path(incoming.name).suffix.lower()
        if incoming.role == FileRole.MODEL and suffix not in MODEL_EXTENSIONS[framework]:
            raise ApplicationError(
                f"a {framework} model file must end in "
                f"{' or '.join(MODEL_EXTENSIONS[framework])}, not {incoming.name!r}",
                field="file",
            )
        if incoming.role == FileRole.PREPROCESSOR and suffix not in PREPROCESSOR_EXTENSIONS:
            raise ApplicationError(
                f"preprocessors are joblib/pickle files ({', '.join(PREPROCESSOR_EXTENSIONS)})",
                field="preprocessor",
            )
        if incoming.role == FileRole.REFERENCE:
            reference.check_filename(incoming.name)
        if incoming.size == 0:
            raise ApplicationError(f"{incoming.name!r} is empty", field=field)
    if sum(1 for f in files if f.role == FileRole.REFERENCE) > 1:
        raise ApplicationError("one reference sample per version", field="reference")


def normalise_sha256(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    text = value.strip().lower()
    text = text.removeprefix("sha256:")
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ApplicationError("a sha256 is 64 hexadecimal characters", field="sha256")
    return text


def _checked_version(*, model_name: str, version: str, framework: str, metadata: dict,
                     files: list[store.IncomingFile], actor):
    """What registering and importing check before anything is written: the version, the
    framework, the metadata and the files. Returns the parsed version and the row's fields."""
    try:
        parsed = parse_version(version)
    except InvalidVersion as exc:
        raise ApplicationError(str(exc), field="version") from None
    if framework not in Framework.values:
        raise ApplicationError(f"must be one of {', '.join(Framework.values)}", field="framework")
    meta = VersionMetadataSerializer(
        data=metadata, model_name=model_name, version=version, framework=framework
    )
    if not meta.is_valid():
        from rest_framework.exceptions import ValidationError

        if "model_card" in meta.errors:  # well-formed JSON whose card cannot be kept: a 422
            raise cards.CardRefused({"metadata": meta.errors})
        raise ValidationError({"metadata": meta.errors})
    _check_files(framework, files)
    data = dict(meta.validated_data)
    if not data.get("author"):
        data["author"] = actor.get_full_name() or actor.get_username()
    for incoming in files:
        if incoming.role == FileRole.REFERENCE:  # its columns must be the features
            reference.read(incoming.path, data.get("signature") or [], data.get("target", ""))
    return parsed, data


def _place_version(*, model: RegisteredModel, version: str, parsed, framework: str, data: dict,
                   files: list[store.IncomingFile], actor, stage: str, created_at=None,
                   lifecycle: dict | None = None) -> tuple[ModelVersion, Path]:
    """Inside the caller's transaction: the version's rows and its published folder in
    `stage`. On failure the caller removes the returned folder (see version_register)."""
    if model.versions.filter(version=version).exists():
        raise Conflict(f"{model.name} {version} is already registered", field="version")
    row = ModelVersion.objects.create(
        model=model, version=version,
        # MLflow's integer version: the model's row is locked by the caller, so no two
        # registrations take the same number.
        number=(model.versions.aggregate(last=Max("number"))["last"] or 0) + 1,
        major=parsed.major, minor=parsed.minor,
        patch=parsed.patch, prerelease=parsed.prerelease, prerelease_key=parsed.prerelease_key,
        stage=stage, framework=framework, created_by=actor, lifecycle=lifecycle or {}, **data,
    )
    if created_at is not None:  # an import keeps the source's date
        row.created_at = created_at
        row.save(update_fields=["created_at"])
    file_rows = ArtifactFile.objects.bulk_create(
        ArtifactFile(version=row, role=incoming.role, filename=incoming.name, position=position,
                     size=incoming.size, sha256=incoming.sha256)
        for position, incoming in enumerate(files)
    )
    final = store.version_dir(model.name, version, stage)
    tmp = store.assemble_version_dir(
        model.name, version, stage, files, document_bytes(version_document(row, files=file_rows)))
    if row.model_card:
        store.atomic_write_bytes(tmp / store.CARD_FILENAME, cards.card_file_text(row).encode())
    try:
        store.publish_version_dir(tmp, final)
    except store.StoreError:
        store.remove_own_dir(tmp)
        raise Conflict(
            f"a folder for {model.name} {version} already exists in the store but no "
            "row does; an operator should run `manage.py reconcile`",
            field="version",
            code="store_inconsistent",
        ) from None
    return row, final


def _locked_model(model_name: str) -> RegisteredModel:
    """The model's row, locked until the caller's transaction ends (registrations of one
    model take their numbers one at a time), or the API's 404."""
    try:
        return RegisteredModel.objects.select_for_update().get(name=model_name)
    except RegisteredModel.DoesNotExist:
        raise access.not_found(model_name) from None


def version_register(
    *,
    model_name: str,
    version: str,
    framework: str,
    metadata: dict,
    files: list[store.IncomingFile],
    actor,
    declared_sha256: str | None = None,
) -> ModelVersion:
    """Register a version from files already received into the store's `.incoming/` folder.

    Files arrive in order: the model file first (role `model`), then preprocessors in the
    order they are applied, then other files. Nothing is unpickled here. On any failure the
    incoming files are the caller's to discard; no row and no version folder remain.
    """
    parsed, data = _checked_version(model_name=model_name, version=version,
                                    framework=framework, metadata=metadata, files=files,
                                    actor=actor)
    declared = normalise_sha256(declared_sha256)
    if declared and declared != files[0].sha256:
        raise Unprocessable(
            f"the model file's sha256 is {files[0].sha256}, not {declared}: the upload was "
            "corrupted or the wrong file was sent",
            field="sha256",
        )
    published: Path | None = None
    try:
        with transaction.atomic(durable=True):
            model = _locked_model(model_name)
            access.require_action(actor, model, "register versions")
            row, published = _place_version(model=model, version=version, parsed=parsed,
                                             framework=framework, data=data, files=files,
                                             actor=actor, stage=Stage.EXPERIMENT)
            audit.record(
                action="version.registered", actor=actor, subject=row,
                after=_version_snapshot(row),
            )
            signals.validation_needed.send(sender=ModelVersion, version=row,
                                           trigger="registration", actor=actor)
            _rewrite_catalogue_on_commit()
    except BaseException:
        if published is not None:
            store.remove_own_dir(published)
        raise
    return row


def version_import_place(
    *,
    model_name: str,
    version: str,
    framework: str,
    metadata: dict,
    files: list[store.IncomingFile],
    actor,
    stage: str,
    reason: str,
    key: str,
    attestation: dict,
    created_at=None,
    lifecycle: dict | None = None,
) -> tuple[ModelVersion, bool]:
    """Register a version imported from a team's model directory straight into `stage`,
    with its history as the source recorded it: an admin's attested import (governance's
    `version_import` decides the stage and calls this).

    `key` identifies the import (model name and the files' sha256s): a version already
    imported under it is returned as it is, with False. `attestation` (source path, source
    version, the files' source paths and sha256s, ...) goes into the version's lifecycle
    (`imported`) and into its one audit event, `version.imported`.
    """
    if not roles.has_role(actor, roles.ADMIN_ROLES):
        raise Forbidden("Only an admin imports versions: the import attests their stage.")
    if not reason.strip():
        raise ApplicationError("give a reason for the import", field="reason")
    if stage not in Stage.values:
        raise ApplicationError(f"must be one of {', '.join(Stage.values)}", field="stage")
    parsed, data = _checked_version(model_name=model_name, version=version,
                                    framework=framework, metadata=metadata, files=files,
                                    actor=actor)
    from django.utils import timezone

    imported = {**attestation, "key": key, "by": actor.get_username(),
                "at": timezone.now().isoformat(), "reason": reason}
    published: Path | None = None
    try:
        with transaction.atomic(durable=True):
            model = _locked_model(model_name)
            earlier = model.versions.filter(lifecycle__imported__key=key).first()
            if earlier is not None:
                return earlier, False
            row, published = _place_version(
                model=model, version=version, parsed=parsed, framework=framework, data=data,
                files=files, actor=actor, stage=stage, created_at=created_at,
                lifecycle={**(lifecycle or {}), "imported": imported})
            audit.record(
                action="version.imported", actor=actor, subject=row, reason=reason,
                after={**_version_snapshot(row), **{k: v for k, v in imported.items()
                                                    if k not in ("by", "at", "reason")}},
            )
            signals.validation_needed.send(sender=ModelVersion, version=row,
                                           trigger="import", actor=actor)
            _rewrite_catalogue_on_commit()
    except BaseException:
        if published is not None:
            store.remove_own_dir(published)
        raise
    return row, True


def version_update(*, version: ModelVersion, actor, **changes) -> ModelVersion:
    """Change a version's description or tags; metadata.json is rewritten to match."""
    unknown = set(changes) - {"description", "tags"}
    if unknown:
        raise ApplicationError("cannot be changed", field=sorted(unknown)[0])
    with transaction.atomic(durable=True):
        # Only the version's row: a join would lock its model and author too, in an order
        # that deadlocks against governance (which locks the model first) on PostgreSQL.
        version = (
            ModelVersion.objects.select_for_update(of=("self",))
            .select_related("model__team", "created_by")
            .get(pk=version.pk)
        )
        access.require_action(actor, version.model, "change its versions")
        before = _version_snapshot(version)
        if "tags" in changes:
            changes["tags"] = _tags(changes["tags"])
        fields = [k for k in ("description", "tags") if k in changes]
        for key in fields:
            setattr(version, key, changes[key])
        if fields:
            version.save(update_fields=[*fields, "updated_at"])
        after = _version_snapshot(version)
        if after != before:
            write_version_metadata(version)
            changed_before, changed_after = audit.changes(before, after)
            audit.record(action="version.updated", actor=actor, subject=version,
                         before=changed_before, after=changed_after)
            _rewrite_catalogue_on_commit()
    return version


CARD_EDIT_ROLES = roles.REGISTER_ROLES | roles.APPROVE_ROLES


def version_card_update(*, version: ModelVersion, actor, sections: dict) -> ModelVersion:
    """Change sections of a version's model card (registry/cards.py): the sections given
    replace those on the row, an empty text clears one, the others stay.

    Data scientists, approvers and admins of the model's team. Refused (409) while a
    deployment moves the version's folder. `model_card.md` is rewritten in the folder once
    the change has committed (a crash in between leaves it stale: reconcile rewrites it).
    """
    if not roles.has_role(actor, CARD_EDIT_ROLES):
        raise audit.denied(actor=actor, subject=version, attempted="version.card_update",
                           message="Your role cannot change a model card.")
    cards.clean(sections)
    with transaction.atomic(durable=True):
        # The version's row only, as version_update.
        version = (ModelVersion.objects.select_for_update(of=("self",))
                   .select_related("model__team", "created_by").get(pk=version.pk))
        access.require_action(actor, version.model, "change its model card", subject=version,
                              attempted="version.card_update")
        if version.moving_by_deployment:
            raise Conflict(f"deployment #{version.moving_by_deployment} is moving "
                           f"{version}'s folder; try again in a moment", code="busy")
        before = version.model_card or {}
        after = cards.normalised({**before, **sections})
        if after == before:
            return version
        version.model_card = after
        version.save(update_fields=["model_card", "updated_at"])
        # Every section on both sides, so a cleared one is recorded as old text -> "".
        changed_before, changed_after = audit.changes(
            {key: before.get(key, "") for key in cards.SECTIONS},
            {key: after.get(key, "") for key in cards.SECTIONS})
        audit.record(action="version.card_updated", actor=actor, subject=version,
                     before=changed_before, after=changed_after)
        version_id = version.pk
        transaction.on_commit(lambda: write_version_card(version_id))
    return version


def write_version_card(version_id: int) -> bool:
    """Render a version's model_card.md from its row, wherever its folder is now (after a
    commit: a later change re-reads the row, so the last write is the latest card). Returns
    False, and logs, when the folder is missing or moving: reconcile finishes the job."""
    version = (ModelVersion.objects.select_related("model", "created_by")
               .filter(pk=version_id).first())
    folder = (store.locate_version_dir(version.model.name, version.version, version.stage)
              if version is not None else None)
    if folder is None:
        logger.warning(
            "model_card.md of version #%s not written: no folder (reconcile will)", version_id)
        return False
    try:
        store.atomic_write_bytes(folder / store.CARD_FILENAME,
                                 cards.card_file_text(version).encode())
    except OSError as exc:  # the folder moved away meanwhile (a deployment)
        logger.warning("model_card.md of %s not written (%s); reconcile "
                                            "will", version, type(exc).__name__)
        return False
    return True


def version_moving_set(*, versions: list[ModelVersion], deployment_id: int | None) -> None:
    """Mark the versions whose folders a deployment is about to move (inside the deployment's
    planning transaction), or clear the mark of a deployment that failed."""
    ModelVersion.objects.filter(pk__in=[v.pk for v in versions]).update(
        moving_by_deployment=deployment_id)


def version_stage_set(*, version: ModelVersion, stage: str, lifecycle: dict, at,
                      review_due_at=None) -> None:
    """Record that a version's folder now is in `stage` (a deployment moved it): the row's
    stage fields and its metadata.json. Governance calls it inside the transaction that
    completes the deployment, with the row locked; its audit event is the deployment's.
    `review_due_at` is the next periodic review of a version entering production (governance
    reads it from the policy); a version in any other stage has none."""
    version.stage, version.stage_changed_at, version.lifecycle = stage, at, lifecycle
    version.moving_by_deployment = None
    version.review_due_at = review_due_at if stage == Stage.PRODUCTION else None
    version.save(update_fields=["stage", "stage_changed_at", "lifecycle",
                                "moving_by_deployment", "review_due_at", "updated_at"])
    write_version_metadata(version)


def version_review_due_set(*, version: ModelVersion, review_due_at) -> None:
    """Record a production version's next review date (a review set it). Compliance calls it
    inside the transaction that records the review, with the row locked; its audit event is
    the review's."""
    version.review_due_at = review_due_at
    version.save(update_fields=["review_due_at", "updated_at"])


def write_version_metadata(version: ModelVersion) -> None:
    """Rewrite the version's metadata.json from its row, wherever its folder now is: the one
    place that writes it after registration."""
    folder = store.locate_version_dir(version.model.name, version.version, version.stage)
    if folder is None:
        raise ApplicationError(
            f"the folder of {version} is missing on disk; run `manage.py reconcile`",
            status_code=409,
            code="store_inconsistent",
        )
    store.atomic_write_bytes(
        folder / store.METADATA_FILENAME, document_bytes(version_document(version))
    )


def version_reference_add(*, version: ModelVersion, incoming: store.IncomingFile, actor
                          ) -> ArtifactFile:
    """Add a reference sample (CSV) to a registered version that has none.

    The file is renamed into the version's folder, wherever its stage is; a version whose
    folder a deployment is moving right now is refused (409), so ask again in a moment.
    """
    incoming.role = FileRole.REFERENCE
    try:
        store.validate_filename(incoming.name)
    except store.UnsafeName as exc:
        raise ApplicationError(f"{incoming.name!r}: {exc}", field="reference") from None
    reference.check_filename(incoming.name)
    if incoming.size == 0:
        raise ApplicationError(f"{incoming.name!r} is empty", field="reference")
    reference.read(incoming.path, version.columns, version.target)
    placed: Path | None = None
    try:
        with transaction.atomic(durable=True):
            version = (ModelVersion.objects.select_for_update(of=("self",))
                       .select_related("model__team").get(pk=version.pk))  # as version_update
            access.require_action(actor, version.model, "add reference samples")
            files = list(version.files.all())
            if any(f.role == FileRole.REFERENCE for f in files):
                raise Conflict(f"{version} already has a reference sample; it is not replaced "
                               "(register a new version with the new sample)",
                               field="reference")
            if any(f.filename.lower() == incoming.name.lower() for f in files):
                raise Conflict(f"{version} already has a file named {incoming.name!r}",
                               field="reference")
            if version.moving_by_deployment:
                raise Conflict(f"deployment #{version.moving_by_deployment} is moving "
                               f"{version}'s folder; try again in a moment", code="busy")
            before = _version_snapshot(version)
            folder = store.locate_version_dir(version.model.name, version.version,
                                              version.stage)
            if folder is None:
                raise ApplicationError(
                    f"the folder of {version} is missing on disk; run `manage.py reconcile`",
                    status_code=409, code="store_inconsistent")
            row = ArtifactFile.objects.create(
                version=version, role=FileRole.REFERENCE, filename=incoming.name,
                position=max((f.position for f in files), default=-1) + 1,
                size=incoming.size, sha256=incoming.sha256)
            try:
                placed = store.place_file(incoming, folder)
            except store.StoreError as exc:
                raise Conflict(str(exc), field="reference", code="store_inconsistent") from None
            write_version_metadata(version)
            audit.record(action="version.reference_added", actor=actor, subject=version,
                         before={"files": before["files"]},
                         after={"files": _version_snapshot(version)["files"]})
            signals.validation_needed.send(sender=ModelVersion, version=version,
                                           trigger="reference", actor=actor)
            _rewrite_catalogue_on_commit()
    except BaseException:
        if placed is not None:
            with contextlib.suppress(FileNotFoundError):
                placed.unlink()
            # metadata.json may already list the file: render it again from the rows.
            with contextlib.suppress(Exception):
                write_version_metadata(ModelVersion.objects.select_related("model")
                                       .get(pk=version.pk))
        raise
    return row


# --- integrity --------------------------------------------------------------------------------



def version_integrity_failed(*, version: ModelVersion, error, found_by: str) -> bool:
    """Flag a version whose file no longer matches its registered sha256, or is gone
    (`error`: an ArtifactIntegrityError). The flag stops it being served, downloaded or
    deployed; governance opens a critical alert for it. Returns True when newly flagged."""
    problem = {"file": getattr(error, "filename", ""),
               "expected_sha256": getattr(error, "expected", ""),
               "actual_sha256": getattr(error, "actual", None),
               "missing": getattr(error, "actual", None) is None, "found_by": found_by}
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().select_related("model").get(
            pk=version.pk)
        if row.integrity_failed_at is not None:
            return False
        from django.utils import timezone

        row.integrity_failed_at = timezone.now()
        row.integrity_problem = problem
        row.save(update_fields=["integrity_failed_at", "integrity_problem", "updated_at"])
        audit.record(action="version.integrity_failed", actor=None, subject=row,
                     before={"integrity": "intact"}, after=problem,
                     reason=f"{problem['file']} of {row} failed its sha256 check")
        signals.integrity_changed.send(sender=ModelVersion, version=row)
    return True


def version_integrity_cleared(*, version: ModelVersion, found_by: str) -> bool:
    """Lift the flag once every file matches its sha256 again (an operator restored it)."""
    with transaction.atomic():
        row = ModelVersion.objects.select_for_update().select_related("model").get(
            pk=version.pk)
        if row.integrity_failed_at is None:
            return False
        before = row.integrity_problem
        row.integrity_failed_at, row.integrity_problem = None, {}
        row.save(update_fields=["integrity_failed_at", "integrity_problem", "updated_at"])
        audit.record(action="version.integrity_restored", actor=None, subject=row,
                     before=before, after={"integrity": "intact", "found_by": found_by})
        signals.integrity_changed.send(sender=ModelVersion, version=row)
    return True
