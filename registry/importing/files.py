"""What a file of a team's model directory is: a model, a preprocessor, metadata or another
artifact, and which framework loads it. Names and extensions only: nothing is unpickled."""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path

from registry.store import FILENAME_RE, METADATA_FILENAME, RESERVED_FILENAMES

MODEL_SUFFIXES = {
    ".joblib": "sklearn", ".pkl": "sklearn", ".pickle": "sklearn",
    ".pt": "torch", ".pth": "torch", ".ts": "torch",
    ".onnx": "onnx",
}
# Formats the source documents mention that this app does not serve: reported, not imported.
UNSERVED_SUFFIXES = {".h5": "Keras HDF5", ".keras": "Keras", ".pb": "TensorFlow SavedModel",
                     ".tflite": "TensorFlow Lite", ".safetensors": "safetensors"}
PREPROCESSOR_SUFFIXES = (".joblib", ".pkl", ".pickle")
# A pickled object whose name says it transforms inputs (seed 002's encoders.pkl, seed 003's
# preprocessing/scaler.pkl, encoder.pkl, vectorizer.pkl).
PREPROCESSOR_WORDS = re.compile(
    r"(encoder|scaler|vectori[sz]er|imputer|tokeni[sz]er|normali[sz]er|preprocess|"
    r"transformer_pipeline|feature_pipeline|label_map)", re.IGNORECASE)
CHECKPOINT_RE = re.compile(r"^(epoch[_-]?\d+|checkpoint.*|best_model)$", re.IGNORECASE)
# `_v<version>` in a file's stem: `overdue_prediction_model_v0.9.2`, `metadata_v0.9.2`,
# `fraud_detector_v1_20240101` (seed 003: {name}_{version}_{date}).
STEM_VERSION_RE = re.compile(
    r"^(?:(?P<name>.*?)_)?v(?P<version>\d+(?:\.\d+){0,2})(?:_(?P<date>\d{8}|\d{4}-\d{2}-\d{2}))?$")
HASH_CHUNK = 1024 * 1024


def suffix(path: Path) -> str:
    return path.suffix.lower()


def is_model_file(path: Path) -> bool:
    return suffix(path) in MODEL_SUFFIXES and not is_preprocessor(path)


def is_preprocessor(path: Path) -> bool:
    return suffix(path) in PREPROCESSOR_SUFFIXES and bool(PREPROCESSOR_WORDS.search(path.stem))


def is_metadata_document(path: Path) -> bool:
    """A version's metadata file: `metadata.json`, `metadata_v0.9.2.json`, `model_info.json`."""
    name = path.name.lower()
    return name == METADATA_FILENAME or (name.startswith("metadata") and name.endswith(".json"))


def framework_of(path: Path) -> str:
    return MODEL_SUFFIXES[suffix(path)]


def stem_version(path: Path) -> tuple[str, str | None, str | None]:
    """(name, version label, date) of a file stem; the label None when the stem has none."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    match = STEM_VERSION_RE.match(stem)
    if not match:
        return stem, None, None
    return match["name"] or "", "v" + match["version"], match["date"]


def sha256_of(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def torch_kind(path: Path) -> str | None:
    """What a torch file holds, from its zip members' names (nothing is unpickled): None for
    TorchScript (which the app serves), else a sentence saying what it is instead."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "not a TorchScript archive (a legacy torch.save pickle)"
    if any("/code/" in name or name.startswith("code/") for name in names):
        return None
    return "a torch.save checkpoint (a state dict or pickled module), not TorchScript"


def store_name(path: Path, taken: set[str], *, prefix: str = "") -> str:
    """A file name the store accepts (flat, safe characters), unique within the version."""
    name = prefix + path.name
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name).replace("..", "_")
    if not name[:1].isalnum():
        name = "f" + name
    if name.lower() in RESERVED_FILENAMES:  # the registry writes these (model_card.md too)
        name = "source_" + name
    if len(name) > 128:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 127 - len(ext)] + "." + ext) if dot and len(ext) < 16 else name[:128]
    candidate, n = name, 2
    while candidate.lower() in taken:
        stem, dot, ext = name.rpartition(".")
        candidate = f"{stem}_{n}.{ext}" if dot else f"{name}_{n}"
        n += 1
    assert FILENAME_RE.fullmatch(candidate), candidate
    taken.add(candidate.lower())
    return candidate
