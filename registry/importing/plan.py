"""The import plan: each version found, with its version number, stage, files and metadata."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from registry.importing import files as kinds
from registry.importing import layouts
from registry.models import FileRole, Stage, TaskType
from registry.store import MODEL_NAME_RE
from registry.versioning import InvalidVersion, parse_version, sort_key

STAGE_ORDER = {Stage.ARCHIVED: 0, Stage.EXPERIMENT: 1, Stage.STAGING: 2, Stage.PRODUCTION: 3}
KNOWN_KEYS = ("author", "description", "algorithm", "training_dataset", "features", "target",
              "hyperparameters", "metrics", "tags", "changelog", "python_version",
              "framework_version", "signature", "input_example")
CREATED_KEYS = ("created_at", "created_date", "trained_at", "training_date", "date")
DEPLOYED_KEYS = ("deployed_at", "deployed_date", "deployment_date")
RETIRED_KEYS = ("retired_at", "retired_date", "retirement_date", "archived_at", "archived_date")
REASON_KEYS = ("retirement_reason", "retired_reason", "archive_reason", "reason")
REPLACED_KEYS = ("replaced_by", "superseded_by")
CHECKSUM_KEYS = ("checksum", "sha256", "model_sha256", "file_sha256")
# Keys read into the row, the lifecycle or the attestation; the rest stays in metadata.json.
CONSUMED_KEYS = {"name", "model_name", "version", "framework", "task_type", "history",
                 "deployment_history", "files", "stage", "created_by", *CREATED_KEYS,
                 *DEPLOYED_KEYS, *RETIRED_KEYS, *REASON_KEYS, *REPLACED_KEYS, *CHECKSUM_KEYS}


@dataclass
class PlannedFile:
    source: Path
    relative: str  # in the source directory
    name: str  # in the store (flat, safe)
    role: str
    size: int
    sha256: str


@dataclass
class PlannedVersion:
    model: str
    version: str  # the SemVer it gets ("" until assigned)
    source_version: str | None  # as the source writes it
    version_note: str
    stage: str  # as the source layout says
    framework: str
    task_type: str
    source: str  # the version's folder or file, relative to the directory
    files: list[PlannedFile]
    metadata: dict  # for the registry's metadata serializer
    set_aside: dict[str, str]  # key -> why it is kept under source_<key>, not in its column
    lifecycle: dict  # retirement and history, kept as the source wrote them
    created_at: str | None  # ISO, UTC
    deployed_at: str | None
    documents: list[str]  # metadata files read (the version's own, then catalogues)
    checksum: str | None  # what the legacy checksum verified, or None
    problems: list[str] = field(default_factory=list)  # any of these stops this version
    warnings: list[str] = field(default_factory=list)
    servable: bool = True  # False: the app cannot load it (e.g. a torch state dict)
    already: str | None = None  # "model version" it was imported as before

    @property
    def key(self) -> str:
        """What identifies the import: the model's name and the sha256 of its model file
        and preprocessors (a README edited since does not make it a new version)."""
        digest = hashlib.sha256(self.model.encode())
        for f in self.files:
            if f.role in (FileRole.MODEL, FileRole.PREPROCESSOR):
                digest.update(f"\n{f.role}:{f.sha256}".encode())
        return digest.hexdigest()

    @property
    def importable(self) -> bool:
        return not self.problems and self.already is None


@dataclass
class Skipped:
    path: str
    why: str


@dataclass
class ImportPlan:
    root: Path
    layout: str
    versions: list[PlannedVersion]
    skipped: list[Skipped]
    # Where the directory came from, when `root` is only where it was unpacked (an uploaded
    # zip): what the attestation names.
    source_label: str | None = None

    @property
    def to_import(self) -> list[PlannedVersion]:
        return [v for v in self.versions if v.importable]


# --- versions ---------------------------------------------------------------------------------


def normalise_version(label) -> str | None:
    """`v1` -> 1.0.0, `v0.9.2` -> 0.9.2, `1.1` -> 1.1.0; None when it is no version number
    (`v4_no_leakage`, `latest`)."""
    if label is None or isinstance(label, bool):
        return None
    text = str(label).strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    match = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(-[0-9A-Za-z.-]+)?", text)
    if not match:
        return None
    result = (f"{int(match[1])}.{int(match[2] or 0)}.{int(match[3] or 0)}"
              + (match[4] or ""))
    try:
        parse_version(result)
    except InvalidVersion:
        return None
    return result


def model_name(text: str | None) -> str | None:
    if not text:
        return None
    name = re.sub(r"[^a-z0-9_-]+", "_", text.strip().lower()).strip("_-")[:64]
    return name if MODEL_NAME_RE.fullmatch(name or "") else None


def default_model_name(root: Path) -> str:
    folder = root if root.name.lower() not in ("models", "model", "") else root.parent
    return model_name(folder.name) or "imported_model"


# --- the plan ---------------------------------------------------------------------------------


def plan_directory(root, *, model: str | None = None,
                   existing: dict[str, dict[str, str | None]] | None = None,
                   imported: dict[str, str] | None = None) -> ImportPlan:
    """Read `root` into a plan. `existing`: model -> {version: import key or None} already
    registered; `imported`: import key -> "model version" of earlier imports. Nothing is
    written; the files are read to hash them."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    chosen = model_name(model) if model else None
    if model and chosen is None:
        raise ValueError(f"{model!r} cannot be a model name (lower-case letters, digits, '_' "
                         "and '-')")
    reading = layouts.read(root)
    default = chosen or default_model_name(root)
    versions = []
    for candidate in reading.candidates:
        planned = _plan_version(reading, candidate, default)
        if planned is not None:
            versions.append(planned)
    for path in reading.catalogue_files:
        if not any(reading.rel(path) in v.documents for v in versions):
            reading.skip(path, "a catalogue naming no version found on disk")
    _drop_duplicates(versions, reading)
    _assign_versions(versions, existing or {}, imported or {})
    _one_production_per_model(versions)
    _map_replaced_by(versions)
    _one_task_type_per_model(versions)
    versions.sort(key=lambda v: (v.model, STAGE_ORDER[v.stage], v.created_at or "", v.version))
    used = {f.relative for v in versions for f in v.files} | {
        d for v in versions for d in v.documents}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_file() and rel not in used and rel not in reading.skipped and not any(
                part.startswith(".") for part in Path(rel).parts):
            reading.skipped[rel] = "not part of any version found"
    skipped = [Skipped(path, why) for path, why in sorted(reading.skipped.items())
               if path not in used]
    return ImportPlan(root=root, layout="; ".join(reading.layout), versions=versions,
                      skipped=skipped)


def _plan_version(reading, candidate: layouts.Candidate, default: str) -> PlannedVersion | None:
    name = model_name(candidate.model) or default
    if candidate.model_file is None:
        for path in candidate.documents:
            reading.skip(path, f"metadata of a version whose model file is not here "
                         f"({candidate.source}); nothing to serve")
        for path in [*candidate.preprocessors, *(p for p, _ in candidate.others)]:
            reading.skip(path, f"{candidate.source} has no model file")
        return None
    documents, own = [], []
    for path in candidate.documents:
        document = layouts.load_json(path)
        if isinstance(document, dict):
            own.append(document)
            documents.append(reading.rel(path))
        else:
            candidate.notes.append(f"{path.name} is not a JSON object: kept as a file only")
    label = next((str(d["version"]) for d in own if isinstance(d.get("version"), (str, int, float))
                  and not isinstance(d.get("version"), bool)), None) or candidate.label
    normalised = normalise_version(label)
    model_rel = reading.rel(candidate.model_file)
    records = []
    for source, record in reading.catalogue:
        path_match = str(record.get("file_path", "")).lstrip("./").endswith(model_rel) or (
            record.get("file_path") and Path(str(record["file_path"])).name
            == candidate.model_file.name and model_name(record["_model"]) == name)
        version_match = model_name(record["_model"]) == name and (
            normalise_version(record["_version"]) == normalised if normalised
            else record["_version"] == label)
        if path_match or version_match:
            records.append(record)
            if source not in documents:
                documents.append(source)
    merged: dict = {}
    for document in [*reversed(records), *reversed(own)]:
        merged.update(document)
    merged.pop("_model", None)
    merged.pop("_version", None)
    if not label and isinstance(merged.get("version"), str):
        label = merged["version"]
        normalised = normalise_version(label)

    planned = PlannedVersion(
        model=name, version="", source_version=label, version_note="", stage=candidate.stage,
        framework=kinds.framework_of(candidate.model_file), task_type="",
        source=candidate.source, files=[], metadata={}, set_aside={}, lifecycle={},
        created_at=None, deployed_at=None, documents=documents, checksum=None,
        warnings=list(candidate.notes))
    _plan_files(reading, candidate, planned)
    _read_metadata(planned, merged, candidate)
    planned.version = normalised or ""
    return planned


def _plan_files(reading, candidate, planned: PlannedVersion) -> None:
    taken: set[str] = set()
    entries = [(candidate.model_file, FileRole.MODEL, ""),
               *((p, FileRole.PREPROCESSOR, "") for p in candidate.preprocessors),
               *((p, FileRole.OTHER, prefix) for p, prefix in candidate.others)]
    seen = set()
    for path, role, prefix in entries:
        if path in seen:
            continue
        seen.add(path)
        try:
            sha256, size = kinds.sha256_of(path)
        except OSError as exc:
            planned.problems.append(f"{reading.rel(path)} cannot be read ({exc.strerror})")
            continue
        if size == 0:
            if role == FileRole.MODEL:
                planned.problems.append(f"the model file {reading.rel(path)} is empty")
            else:
                reading.skip(path, "an empty file")
            continue
        if len(planned.files) >= 50:
            reading.skip(path, "beyond the 50 files a version may hold")
            continue
        planned.files.append(PlannedFile(
            source=path, relative=reading.rel(path), role=role, size=size, sha256=sha256,
            name=kinds.store_name(path, taken, prefix=prefix)))
    if planned.framework == "torch":
        kind = kinds.torch_kind(candidate.model_file)
        if kind:
            planned.servable = False
            planned.warnings.append(f"{candidate.model_file.name} is {kind}: kept, but this "
                                    "app serves TorchScript only (re-export it with "
                                    "torch.jit.save); it cannot go to production")


def _moment(value) -> str | None:
    """An ISO datetime in UTC from the seeds' dates (`2024-11-15`, `2025-06-07T10:00:00Z`,
    `20240101`), or None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d{8}", text):
        text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _first(document: dict, keys) -> tuple[str | None, object]:
    for key in keys:
        if document.get(key) not in (None, ""):
            return key, document[key]
    return None, None


def _read_metadata(planned: PlannedVersion, merged: dict, candidate) -> None:
    from core.limits import is_finite_number
    from registry.metadata import (
        FRAMEWORK_ALIASES,
        METRIC_NAME_RE,
        VersionMetadataSerializer,
    )

    metadata = {k: v for k, v in merged.items() if k not in CONSUMED_KEYS}
    if isinstance(metadata.get("metrics"), dict):
        # Numbers go to the metrics column; the rest ("79.8%") stays, under source_metrics.
        numbers = {k: v for k, v in metadata["metrics"].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and METRIC_NAME_RE.fullmatch(str(k)) and is_finite_number(v)}
        if len(numbers) != len(metadata["metrics"]):
            metadata["source_metrics"] = {k: v for k, v in metadata["metrics"].items()
                                          if k not in numbers}
            planned.set_aside["metrics"] = ("not numbers: "
                                            + ", ".join(sorted(metadata["source_metrics"])))
            metadata["metrics"] = numbers
    if planned.source_version is not None:
        metadata["source_version"] = planned.source_version
    for key in ("model_name", "name"):
        if isinstance(merged.get(key), str) and model_name(merged[key]) != planned.model:
            metadata["source_model_name"] = merged[key]  # seed 002: "model.pth"
    declared = merged.get("framework")
    if isinstance(declared, str) and FRAMEWORK_ALIASES.get(declared.lower()) != planned.framework:
        planned.warnings.append(f"the metadata says framework {declared!r}; the file "
                                f"{candidate.model_file.name} is loaded as {planned.framework}")
        metadata["source_framework"] = declared
    # Known keys the registry's serializer refuses are kept aside under source_<key>.
    for _ in range(len(KNOWN_KEYS) + 1):
        serializer = VersionMetadataSerializer(data=metadata, model_name=planned.model,
                                               version="0.0.0", framework=planned.framework)
        if serializer.is_valid():
            break
        for key, errors in serializer.errors.items():
            if key in metadata:
                metadata[f"source_{key}"] = metadata.pop(key)
                planned.set_aside[key] = "; ".join(str(e) for e in _flat(errors))[:200]
    planned.metadata = metadata

    _, created = _first(merged, CREATED_KEYS)
    planned.created_at = _moment(created) or (_moment(candidate.date) if candidate.date else None)
    if created and not _moment(created):
        planned.warnings.append(f"created date {created!r} is not a date: not kept as one")
    _, deployed = _first(merged, DEPLOYED_KEYS)
    planned.deployed_at = _moment(deployed)
    lifecycle = {}
    if planned.stage == Stage.ARCHIVED:
        _, retired = _first(merged, RETIRED_KEYS)
        if _moment(retired):
            lifecycle["retired_at"] = _moment(retired)
        _, reason = _first(merged, REASON_KEYS)
        if isinstance(reason, str):
            lifecycle["reason"] = reason
        _, replaced = _first(merged, REPLACED_KEYS)
        if replaced is not None:
            lifecycle["replaced_by"] = str(replaced)
    _, history = _first(merged, ("history", "deployment_history"))
    if isinstance(history, list) and all(isinstance(h, dict) for h in history):
        lifecycle["history"] = history
    elif history is not None:
        lifecycle["source_history"] = history
    planned.lifecycle = lifecycle
    planned.task_type = _task_type(merged, planned)
    _verify_checksums(planned, merged)


def _flat(errors):
    if isinstance(errors, dict):
        for value in errors.values():
            yield from _flat(value)
    elif isinstance(errors, list):
        for value in errors:
            yield from _flat(value)
    else:
        yield errors


def _task_type(merged: dict, planned: PlannedVersion) -> str:
    declared = str(merged.get("task_type") or merged.get("task") or "").lower()
    if declared in TaskType.values:
        return declared
    words = " ".join(str(merged.get(k, "")) for k in ("algorithm", "description", "target")
                     ).lower() + " " + planned.model
    metrics = " ".join(merged.get("metrics", {}) if isinstance(merged.get("metrics"), dict)
                       else ()).lower()
    if re.search(r"classif|logistic|churn|fraud|detect|overdue", words):
        return TaskType.CLASSIFICATION
    if re.search(r"cluster|k-?means|segment", words):
        return TaskType.CLUSTERING
    if re.search(r"forecast|lstm|arima|prophet", words):
        return TaskType.FORECASTING
    if re.search(r"recommend|ranking|collaborative", words):
        return TaskType.RANKING
    if re.search(r"regress", words) or (re.search(r"\b(mae|rmse|mse|r2)\b", metrics)
                                        and "accuracy" not in metrics):
        return TaskType.REGRESSION
    return TaskType.CLASSIFICATION


def _verify_checksums(planned: PlannedVersion, merged: dict) -> None:
    """A legacy `checksum` ("sha256:<hex>" or bare hex) must match the model file; the
    app's own `files` list must match each file it names. A mismatch stops the version."""
    model_file = planned.files[0] if planned.files and planned.files[0].role == FileRole.MODEL \
        else None
    key, declared = _first(merged, CHECKSUM_KEYS)
    verified = []
    if declared is not None and model_file is not None:
        text = str(declared).strip().lower()
        algorithm, _, digest = text.rpartition(":")
        if algorithm not in ("", "sha256"):
            planned.warnings.append(f"{key} {declared!r} is {algorithm}, not sha256: not "
                                    "verified")
        elif not re.fullmatch(r"[0-9a-f]{64}", digest):
            planned.problems.append(f"{key} {declared!r} is not a sha256 (64 hexadecimal "
                                    "digits): the model file cannot be verified")
        elif digest != model_file.sha256:
            planned.problems.append(f"checksum mismatch: the metadata says {digest}, "
                                    f"{model_file.relative} is {model_file.sha256}")
        else:
            verified.append(f"{model_file.relative} matches its {key}")
    listed = merged.get("files")
    if isinstance(listed, list):
        by_name = {Path(f.relative).name: f for f in planned.files}
        for entry in listed:
            if not isinstance(entry, dict) or entry.get("name") not in by_name:
                continue
            actual = by_name[entry["name"]]
            if str(entry.get("sha256", "")).lower() != actual.sha256:
                planned.problems.append(f"checksum mismatch: metadata lists {entry['name']} "
                                        f"as {entry.get('sha256')}, it is {actual.sha256}")
            else:
                verified.append(f"{actual.relative} matches its listed sha256")
    if verified and not planned.problems:
        planned.checksum = "; ".join(verified)


def _drop_duplicates(versions: list[PlannedVersion], reading) -> None:
    """The same bytes found twice (seed 002 keeps a copy of production in archive/): the copy
    in the furthest stage is imported, the other reported."""
    best: dict[str, PlannedVersion] = {}
    for planned in versions:
        other = best.get(planned.key)
        if other is None or STAGE_ORDER[planned.stage] > STAGE_ORDER[other.stage]:
            best[planned.key] = planned
    for planned in list(versions):
        keeper = best[planned.key]
        if keeper is not planned:
            versions.remove(planned)
            for f in planned.files:
                reading.skipped.setdefault(
                    f.relative, f"the same model as {keeper.source} (imported from there)")


def _assign_versions(versions, existing, imported) -> None:
    """SemVer-like labels are normalised; others (`v4_no_leakage`, none) get the next free
    major version of their model, oldest first, after every numbered version."""
    taken: dict[str, set[str]] = {m: set(v) for m, v in existing.items()}
    for planned in versions:
        if planned.key in imported:
            planned.already = imported[planned.key]
            planned.version = imported[planned.key].rsplit(" ", 1)[-1]
            planned.version_note = f"already imported as {planned.version}"
    for planned in versions:
        if planned.already or not planned.version:
            continue
        mine = taken.setdefault(planned.model, set())
        if planned.version in mine:
            planned.problems.append(f"{planned.model} {planned.version} is already registered "
                                    "with other files")
        mine.add(planned.version)
        planned.version_note = (f"{planned.source_version} → {planned.version}"
                                if planned.source_version != planned.version else "as written")
    unnumbered = sorted((v for v in versions if not v.version),
                        key=lambda v: (v.created_at or "", STAGE_ORDER[v.stage], v.source))
    for planned in unnumbered:
        mine = taken.setdefault(planned.model, set())
        major = max((parse_version(v).major for v in mine), default=0) + 1
        planned.version = f"{major}.0.0"
        mine.add(planned.version)
        planned.version_note = (
            f"{planned.source_version!r} is not a version number → {planned.version} (the next "
            "free), kept as source_version" if planned.source_version
            else f"no version in the source → {planned.version} (the next free)")


def _one_production_per_model(versions) -> None:
    by_model: dict[str, list[PlannedVersion]] = {}
    for planned in versions:
        if planned.stage == Stage.PRODUCTION and planned.importable:
            by_model.setdefault(planned.model, []).append(planned)
    for model, found in by_model.items():
        found.sort(key=lambda v: sort_key(v.version))
        for planned in found[:-1]:
            planned.stage = Stage.STAGING
            planned.warnings.append(f"{model} has several production versions in the source; "
                                    f"{found[-1].version} is production, this one staging")


def _one_task_type_per_model(versions) -> None:
    """A model has one task type: the one of its version in the furthest stage."""
    chosen: dict[str, PlannedVersion] = {}
    for planned in versions:
        best = chosen.get(planned.model)
        if best is None or STAGE_ORDER[planned.stage] > STAGE_ORDER[best.stage]:
            chosen[planned.model] = planned
    for planned in versions:
        planned.task_type = chosen[planned.model].task_type


def _map_replaced_by(versions) -> None:
    numbers = {(v.model, v.source_version): v.version for v in versions if v.source_version}
    for planned in versions:
        replaced = planned.lifecycle.get("replaced_by")
        if replaced is None:
            continue
        mapped = numbers.get((planned.model, replaced)) or normalise_version(replaced)
        if mapped and mapped != replaced:
            planned.lifecycle["replaced_by"] = mapped
            planned.lifecycle["source_replaced_by"] = replaced
