"""A version as an MLflow model directory, generated on request (nothing is written to disk):

    MLmodel                      python_function flavor: loader_module governance_pyfunc,
                                 code code/, data data/
    requirements.txt             joblib and the framework, at the versions recorded
    code/governance_pyfunc.py    the loader (interop/mlflow_model/governance_pyfunc.py)
    data/manifest.json           framework, columns, and each file's name, role, size, sha256
    data/<model file>            our artifact, streamed after its sha256 is checked
    data/<preprocessor files>    likewise, in the order they apply

The loader checks every data file against the manifest before it deserialises anything.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass
from pathlib import Path

from interop.shapes import STAGE_TO_MLFLOW
from registry.models import ArtifactFile, FileRole, Framework, ModelVersion

LOADER = Path(__file__).with_name("mlflow_model") / "governance_pyfunc.py"
_PACKAGES = {Framework.SKLEARN: "scikit-learn", Framework.TORCH: "torch",
             Framework.ONNX: "onnxruntime"}


@dataclass(frozen=True)
class Entry:
    path: str
    size: int
    content: bytes | None = None            # generated
    artifact: ArtifactFile | None = None    # one of the version's files, from the store


def _text(path: str, text: str) -> Entry:
    data = text.encode()
    return Entry(path, len(data), content=data)


def _mlmodel(version: ModelVersion) -> str:
    # JSON is YAML: MLflow reads MLmodel with yaml.safe_load.
    document = {
        "artifact_path": "model",
        "flavors": {"python_function": {
            "loader_module": "governance_pyfunc",
            "code": "code",
            "data": "data",
            "python_version": version.python_version or "3.11",
        }},
        "model_uuid": (version.sha256 or "")[:32],
        "utc_time_created": version.created_at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "metadata": {
            "registered_model": version.model.name,
            "version_number": version.number,
            "semver": version.version,
            "stage": STAGE_TO_MLFLOW[version.stage],
            "sha256": version.sha256,
        },
    }
    return json.dumps(document, indent=2) + "\n"


def _requirements(version: ModelVersion) -> str:
    package = _PACKAGES[version.framework]
    pinned = f"{package}=={version.framework_version}" if version.framework_version else package
    return "\n".join(["joblib", "numpy", pinned]) + "\n"


def entries(version: ModelVersion) -> dict[str, Entry]:
    """Path inside the directory -> entry (files only; folders are implied)."""
    files = [f for f in sorted(version.files.all(), key=lambda f: f.position)
             if f.role in (FileRole.MODEL, FileRole.PREPROCESSOR)]
    manifest = {
        "model": version.model.name,
        "semver": version.version,
        "framework": version.framework,
        "columns": [column["name"] for column in version.columns],
        "files": [{"name": f.filename, "role": f.role, "size": f.size, "sha256": f.sha256}
                  for f in files],
    }
    found = [
        _text("MLmodel", _mlmodel(version)),
        _text("requirements.txt", _requirements(version)),
        _text("code/governance_pyfunc.py", LOADER.read_text()),
        _text("data/manifest.json", json.dumps(manifest, indent=2) + "\n"),
        *(Entry(f"data/{f.filename}", f.size, artifact=f) for f in files),
    ]
    return {entry.path: entry for entry in found}


def listing(found: dict[str, Entry], folder: str) -> list[dict] | None:
    """MLflow's list-artifacts answer for `folder` ("" is the root): names relative to it.
    None when `folder` is neither a folder nor a file of the directory."""
    folder = folder.strip("/")
    if folder in found:  # a file: MLflow lists it as itself
        entry = found[folder]
        return [{"path": posixpath.basename(folder), "is_dir": False, "file_size": entry.size}]
    prefix = f"{folder}/" if folder else ""
    children: dict[str, dict] = {}
    for path, entry in found.items():
        if not path.startswith(prefix):
            continue
        head, _, rest = path[len(prefix):].partition("/")
        children[head] = ({"path": head, "is_dir": True} if rest
                          else {"path": head, "is_dir": False, "file_size": entry.size})
    if not children:
        return None
    return [children[name] for name in sorted(children)]
