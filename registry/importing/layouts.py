"""Walking a team's model directory: which files make up which version, in which stage.

Three families, told apart by the folders at the top (a directory may mix them):

- stage folders (seeds 000, 002, 004): `production/ staging/ archived/ archive/ experiments/`,
  each holding model folders (`production/<model>/`), `<model>_v<version>/` folders,
  `v<version>_<date>/` folders of the directory's one model, or that model's files directly;
  `metadata/` holds catalogues (`model_registry.json`).
- `trained/` (seeds 001, 003): `trained/<name>_v<version>/model.joblib` folders or
  `trained/{name}_{version}_{date}.pkl` files, with `preprocessing/` (shared preprocessors),
  `evaluation/<name>_v<version>/` (results, kept as other files) and `metadata/`.
- anything else: a plain folder of model files.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from registry.importing import files as kinds

STAGE_FOLDERS = {"production": "production", "staging": "staging", "archived": "archived",
                 "archive": "archived", "experiments": "experiment", "experiment": "experiment"}
CATALOGUE_FOLDERS = ("metadata", "registry")
# `<model>_v1.1`, `v3_2024-11-10`, `v1.0.0` (the app's own layout), `churn_v1.0.0-rc.1`.
FOLDER_RE = re.compile(
    r"^(?:(?P<name>.+?)_)?v(?P<version>\d+(?:\.\d+){0,2}(?:-[0-9A-Za-z.-]+)?)"
    r"(?:_(?P<date>\d{4}-\d{2}-\d{2}|\d{8}))?$")
MAX_JSON_BYTES = 16 * 1024 * 1024


@dataclass
class Candidate:
    """One version as found on disk, before its metadata is read and its version decided."""

    model: str | None  # None: the directory's one model (--model, or the folder's name)
    stage: str
    source: str  # the version's folder (or file), relative to the directory
    model_file: Path | None = None
    preprocessors: list[Path] = field(default_factory=list)
    others: list[tuple[Path, str]] = field(default_factory=list)  # (file, name prefix)
    documents: list[Path] = field(default_factory=list)  # its metadata files, first wins
    label: str | None = None  # the version as a folder or file name writes it
    date: str | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class Reading:
    root: Path
    layout: list[str] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    catalogue: list[tuple[str, dict]] = field(default_factory=list)  # (source file, record)
    catalogue_files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # relative path -> why

    def rel(self, path: Path) -> str:
        return str(path.relative_to(self.root))

    def skip(self, path: Path, why: str) -> None:
        self.skipped.setdefault(self.rel(path), why)


def read(root: Path) -> Reading:
    reading = Reading(root)
    children = _entries(reading, root)
    names = {p.name.lower(): p for p in children}
    stage_dirs = [p for p in children if p.is_dir() and p.name.lower() in STAGE_FOLDERS]
    for folder in CATALOGUE_FOLDERS:
        if folder in names and names[folder].is_dir():
            _read_catalogue(reading, names[folder])
    if stage_dirs:
        reading.layout.append("stage folders (" + ", ".join(sorted(p.name for p in stage_dirs))
                              + ")")
        for folder in stage_dirs:
            _read_stage_folder(reading, folder, STAGE_FOLDERS[folder.name.lower()])
    if "trained" in names and names["trained"].is_dir():
        reading.layout.append("trained/ folder")
        _read_trained(reading, names["trained"], names)
    if "checkpoints" in names and names["checkpoints"].is_dir():
        for path in _files_below(reading, names["checkpoints"]):
            reading.skip(path, "a training checkpoint, not a version")
    if not reading.layout:
        reading.layout.append("a plain folder of model files")
        _read_flat(reading, [p for p in children if p.is_file()], "experiment", root,
                   shared_preprocessors=True)
    else:
        for path in children:
            if path.is_file():
                reading.skip(path, "not inside a version's folder (the directory's own file)")
    return reading


# --- walking ----------------------------------------------------------------------------------


def _entries(reading: Reading, folder: Path) -> list[Path]:
    """The folder's entries, sorted; symbolic links and hidden files are reported, not read."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            reading.skip(path, "a symbolic link (never followed)")
        elif path.name.startswith("."):
            if path.is_file():
                reading.skip(path, "a hidden file")
        elif path.is_dir() or path.is_file():
            found.append(path)
        else:
            reading.skip(path, "not a regular file")
    return found


def _files_below(reading: Reading, folder: Path) -> list[Path]:
    found = []
    for path in _entries(reading, folder):
        found.extend(_files_below(reading, path) if path.is_dir() else [path])
    return found


def _read_stage_folder(reading: Reading, folder: Path, stage: str) -> None:
    entries = _entries(reading, folder)
    loose = [p for p in entries if p.is_file()]
    if any(kinds.is_model_file(p) for p in loose):
        # Seed 002: the stage folder itself holds the directory's one model.
        _read_version_folder(reading, folder, None, stage, label=None, date=None, files=loose)
    else:
        for path in loose:
            reading.skip(path, f"not inside a model's folder in {folder.name}/")
    for sub in (p for p in entries if p.is_dir()):
        match = FOLDER_RE.match(sub.name)
        if match:
            _read_version_folder(reading, sub, match["name"], stage,
                                 label="v" + match["version"], date=match["date"])
        else:
            _read_model_folder(reading, sub, sub.name, stage)


def _read_model_folder(reading: Reading, folder: Path, model: str, stage: str) -> None:
    """`production/<model>/` or `archived/<model>/`: its files (one version, or several told
    apart by `_v<version>` in their names) and its `v<version>/` folders."""
    entries = _entries(reading, folder)
    for sub in (p for p in entries if p.is_dir()):
        match = FOLDER_RE.match(sub.name)
        if match and not match["name"]:
            _read_version_folder(reading, sub, model, stage, label="v" + match["version"],
                                 date=match["date"])
        else:
            for path in _files_below(reading, sub):
                reading.skip(path, f"in a folder of {model} that is not a version folder "
                             "(v<version>)")
    files = [p for p in entries if p.is_file()]
    if files:
        _group_by_version(reading, folder, model, stage, files)


def _group_by_version(reading: Reading, folder: Path, model: str, stage: str,
                      files: list[Path]) -> None:
    labelled: dict[str, list[Path]] = {}
    loose: list[Path] = []
    for path in files:
        _, label, _ = kinds.stem_version(path)
        if label and (kinds.is_model_file(path) or kinds.is_metadata_document(path)):
            labelled.setdefault(_group_key(label), []).append(path)
        else:
            loose.append(path)
    loose_models = [p for p in loose if kinds.is_model_file(p)]
    if loose_models and (labelled or len(loose_models) > 1):
        if stage == "experiment" and not labelled:
            # Seed 000's experiments/<project>/: each model file is its own candidate model.
            shared = [p for p in loose if not kinds.is_model_file(p)]
            for path in loose_models:
                name = f"{model}-{path.stem}"
                _read_version_folder(reading, folder, name, stage, label=None, date=None,
                                     files=[path, *shared], source=reading.rel(path),
                                     documents_shared=True)
            return
        for path in loose_models:
            reading.skip(path, f"{folder.name}/ holds several model files and nothing says "
                         "which version this one is (name it <model>_v<version>)")
        loose = [p for p in loose if p not in loose_models]
    if not labelled:
        _read_version_folder(reading, folder, model, stage, label=None, date=None, files=loose)
        return
    if len(labelled) == 1:
        (group,) = labelled.values()
        label, date = _label_of(group)
        _read_version_folder(reading, folder, model, stage, label=label, date=date,
                             files=[*group, *loose])
        return
    for group in labelled.values():
        label, date = _label_of(group)
        _read_version_folder(reading, folder, model, stage, label=label, date=date,
                             files=group, source=f"{reading.rel(folder)} ({label})")
    for path in loose:
        reading.skip(path, f"{folder.name}/ holds several versions and this file names none "
                     "of them")


def _group_key(label: str) -> str:
    from registry.importing.plan import normalise_version

    return normalise_version(label) or label


def _label_of(group: list[Path]) -> tuple[str | None, str | None]:
    for path in sorted(group, key=lambda p: not kinds.is_model_file(p)):
        _, label, date = kinds.stem_version(path)
        if label:
            return label, date
    return None, None


def _read_version_folder(reading: Reading, folder: Path, model: str | None, stage: str, *,
                         label: str | None, date: str | None, files: list[Path] | None = None,
                         source: str | None = None, documents_shared: bool = False) -> None:
    """One version's files: the model file, preprocessors (also a `preprocessing/` folder),
    metadata documents and every other file, which is kept as an `other` artifact."""
    candidate = Candidate(model=model, stage=stage, label=label, date=date,
                          source=source or reading.rel(folder))
    if files is None:
        files = []
        for path in _entries(reading, folder):
            if path.is_file():
                files.append(path)
            elif path.name.lower() in ("preprocessing", "preprocessors"):
                files.extend(p for p in _files_below(reading, path))
                candidate.preprocessors.extend(
                    p for p in _files_below(reading, path) if kinds.suffix(p)
                    in kinds.PREPROCESSOR_SUFFIXES)
            else:
                candidate.others.extend((p, f"{path.name}_") for p in _files_below(reading, path))
    models = [p for p in files if kinds.is_model_file(p)]
    if len(models) > 1:
        named = [p for p in models if "model" in p.stem.lower()]
        if len(named) == 1:
            models = named
        else:
            for path in models:
                reading.skip(path, f"{candidate.source} holds several model files "
                             f"({', '.join(p.name for p in models)}); import them from "
                             "separate folders")
            return
    candidate.model_file = models[0] if models else None
    for path in files:
        if path == candidate.model_file or path in candidate.preprocessors:
            continue
        if kinds.is_preprocessor(path):
            candidate.preprocessors.append(path)
        elif kinds.is_metadata_document(path):
            candidate.documents.append(path)
            # The team's own file is kept too, byte for byte, beside the registry's.
            candidate.others.append((path, "source_"))
        elif kinds.suffix(path) in kinds.UNSERVED_SUFFIXES and candidate.model_file is None:
            reading.skip(path, f"a {kinds.UNSERVED_SUFFIXES[kinds.suffix(path)]} model: this "
                         "registry serves scikit-learn/joblib, TorchScript and ONNX")
        else:
            candidate.others.append((path, ""))
    if documents_shared:
        candidate.notes.append("the folder's other files are kept with each of its models")
    reading.candidates.append(candidate)


def _read_trained(reading: Reading, trained: Path, top: dict[str, Path]) -> None:
    """Seed 001 (`trained/<name>_v<version>/`) and seed 003 (`trained/{name}_{version}_{date}
    .pkl`, with `preprocessing/` applied before each of them)."""
    before = len(reading.candidates)
    entries = _entries(reading, trained)
    for sub in (p for p in entries if p.is_dir()):
        match = FOLDER_RE.match(sub.name)
        if match and match["name"]:
            _read_version_folder(reading, sub, match["name"], "experiment",
                                 label="v" + match["version"], date=match["date"])
        else:
            _read_model_folder(reading, sub, sub.name, "experiment")
    _read_flat(reading, [p for p in entries if p.is_file()], "experiment", trained)
    added = reading.candidates[before:]
    shared = top.get("preprocessing")
    if shared is not None and shared.is_dir():
        for path in _files_below(reading, shared):
            if kinds.suffix(path) not in kinds.PREPROCESSOR_SUFFIXES:
                reading.skip(path, "not a joblib/pickle preprocessor")
            elif not added:
                reading.skip(path, "no model in trained/ to apply it to")
        preprocessors = [p for p in _files_below(reading, shared)
                         if kinds.suffix(p) in kinds.PREPROCESSOR_SUFFIXES]
        for candidate in added:
            candidate.preprocessors.extend(preprocessors)
            if preprocessors:
                candidate.notes.append("preprocessing/ is shared: applied before this model, "
                                       "in alphabetical order")
    evaluation = top.get("evaluation")
    if evaluation is not None and evaluation.is_dir():
        for sub in _entries(reading, evaluation):
            match = FOLDER_RE.match(sub.name) if sub.is_dir() else None
            target = next((c for c in added if match and c.model == match["name"]
                           and _group_key(c.label or "") == _group_key("v" + match["version"])),
                          None)
            if target is None:
                for path in _files_below(reading, sub) if sub.is_dir() else [sub]:
                    reading.skip(path, "an evaluation of no version found in trained/")
                continue
            target.others.extend((p, "evaluation_") for p in _files_below(reading, sub))


def _read_flat(reading: Reading, files: list[Path], stage: str, folder: Path, *,
               shared_preprocessors: bool = False) -> None:
    """Model files side by side, each its own version: `{name}_{version}_{date}.pkl`."""
    models = [p for p in files if kinds.is_model_file(p)]
    preprocessors = [p for p in files if kinds.is_preprocessor(p)]
    rest = [p for p in files if p not in models and p not in preprocessors]
    for path in models:
        name, label, date = kinds.stem_version(path)
        candidate = Candidate(model=name or None, stage=stage, source=reading.rel(path),
                              model_file=path, label=label, date=date)
        if len(models) == 1:
            candidate.model = None if folder == reading.root else (name or None)
            if shared_preprocessors:
                candidate.preprocessors.extend(preprocessors)
            for other in rest:
                if kinds.is_metadata_document(other):
                    candidate.documents.append(other)
                    candidate.others.append((other, "source_"))
                else:
                    candidate.others.append((other, ""))
        reading.candidates.append(candidate)
    if len(models) != 1:
        for path in [*preprocessors, *rest] if shared_preprocessors or not models else rest:
            reading.skip(path, "beside several model files: not tied to one of them"
                         if models else "no model file beside it")
    elif not shared_preprocessors:
        for path in [*preprocessors, *rest]:
            reading.skip(path, f"loose in {folder.name}/: not tied to a model")


# --- catalogues -------------------------------------------------------------------------------

# Keys under which catalogues group entries (never a model's name).
CONTAINER_KEYS = {"models", "versions", "registry", "entries", "items", "data", "history",
                  *STAGE_FOLDERS}


def _read_catalogue(reading: Reading, folder: Path) -> None:
    for path in _files_below(reading, folder):
        document = load_json(path) if path.suffix.lower() == ".json" else None
        if document is None:
            reading.skip(path, "global metadata, not a version's (left where it is)")
            continue
        records = list(catalogue_records(document))
        if not records:
            reading.skip(path, "names no model version")
            continue
        reading.catalogue_files.append(path)
        reading.catalogue.extend((reading.rel(path), record) for record in records)


def load_json(path: Path):
    try:
        if path.stat().st_size > MAX_JSON_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def catalogue_records(value, name: str | None = None, depth: int = 0):
    """Every entry of a catalogue that names a version: `{"model_name" | "name": ...,
    "version": ...}` objects, in lists or under `versions` keyed by version, under a model's
    name or not. Yields dicts with `_model` and `_version` set."""
    if depth > 8:
        return
    if isinstance(value, list):
        for item in value:
            yield from catalogue_records(item, name, depth + 1)
        return
    if not isinstance(value, dict):
        return
    own = next((value[k] for k in ("model_name", "name", "model")
                if isinstance(value.get(k), str) and re.fullmatch(r"[A-Za-z0-9_-]+", value[k])),
               None)
    here = own or name
    version = value.get("version")
    if here and isinstance(version, (str, int, float)) and not isinstance(version, bool):
        yield {**value, "_model": here, "_version": str(version)}
    for key, child in value.items():
        if key == "versions" and isinstance(child, dict):
            for number, entry in child.items():
                if isinstance(entry, dict):
                    yield from catalogue_records({"version": number, **entry}, here, depth + 1)
        elif isinstance(child, (dict, list)):
            child_name = here
            if (isinstance(child, dict) and key.lower() not in CONTAINER_KEYS
                    and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", key) and own is None):
                child_name = key
            yield from catalogue_records(child, child_name, depth + 1)
