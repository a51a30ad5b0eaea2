"""Loading a registered version into memory, one function for every framework.

Each file is read once into memory, its sha256 compared with the row, and only then handed to
the framework: what is loaded is exactly the bytes that were verified (no window in which the
file could change between check and load). A pickle is code, so this must only be called
where running the artifact is intended: validation's sandbox, the prediction cache after
validation, or a person's own `load_model` call.
"""

from __future__ import annotations

import hashlib

from registry import store
from registry.artifacts import (  # noqa: F401  (re-exported: the public error types)
    ArtifactError,
    ArtifactIntegrityError,
    LoadedModel,
    deserialize,
)
from registry.models import FileRole, Framework, ModelVersion


def read_verified(version: ModelVersion, artifact) -> bytes:
    folder = store.locate_version_dir(version.model.name, version.version, version.stage)
    if folder is None:
        raise ArtifactError(f"the folder of {version} is missing from the store")
    try:
        with store.open_no_follow(folder / artifact.filename) as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ArtifactError(f"{artifact.filename} of {version} is missing from the store") from None
    except OSError:
        raise ArtifactError(f"{artifact.filename} of {version} cannot be read") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != artifact.sha256 or len(data) != artifact.size:
        raise ArtifactIntegrityError(
            f"{artifact.filename} of {version} has sha256 {digest}, but {artifact.sha256} was "
            "registered: the file changed on disk, so it was not loaded"
        )
    return data


def load_version(version: ModelVersion) -> LoadedModel:
    """Verify every file the model needs, then load them. A mismatch loads nothing."""
    files = sorted(version.files.all(), key=lambda f: f.position)
    model_file = next((f for f in files if f.role == FileRole.MODEL), None)
    if model_file is None:
        raise ArtifactError(f"{version} has no model file")
    preprocessor_files = [f for f in files if f.role == FileRole.PREPROCESSOR]
    # Read and verify everything before deserialising anything.
    payloads = {f.pk: read_verified(version, f) for f in [model_file, *preprocessor_files]}
    estimator = deserialize(version.framework, payloads[model_file.pk], model_file.filename)
    preprocessors = [
        deserialize(Framework.SKLEARN, payloads[f.pk], f.filename) for f in preprocessor_files
    ]
    return LoadedModel(
        name=version.model.name,
        version=version.version,
        framework=version.framework,
        estimator=estimator,
        preprocessors=preprocessors,
        feature_names=[column["name"] for column in version.signature] or version.features,
        sha256=model_file.sha256,
    )


def load_model(name: str, version: str = "latest", stage: str | None = None) -> LoadedModel:
    from registry.errors import ApplicationError
    from registry.selectors import version_resolve

    try:
        found = version_resolve(name, version, stage)
    except ApplicationError as exc:
        raise LookupError(exc.message) from None
    return load_version(found)
