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
    ArtifactMissing,
    LoadedModel,
    deserialize,
)
from registry.models import FileRole, Framework, ModelVersion


def _version_folder(version: ModelVersion, artifact):
    missing = {"filename": artifact.filename, "expected": artifact.sha256}
    try:
        folder = store.locate_version_dir(version.model.name, version.version, version.stage)
    except store.StoreError as exc:  # a symbolic link where the version folder should be
        raise ArtifactMissing(f"the folder of {version} is refused: {exc}", **missing) from None
    if folder is None:
        raise ArtifactMissing(f"the folder of {version} is missing from the store", **missing)
    return folder


def _opened(version: ModelVersion, artifact):
    try:
        return store.open_no_follow(store.version_file(_version_folder(version, artifact),
                                                       artifact.filename))
    except FileNotFoundError:
        raise ArtifactMissing(f"{artifact.filename} of {version} is missing from the store",
                              filename=artifact.filename, expected=artifact.sha256) from None
    except (OSError, store.UnsafeName):
        raise ArtifactMissing(f"{artifact.filename} of {version} cannot be read (a symbolic "
                              "link, or a permission problem)", filename=artifact.filename,
                              expected=artifact.sha256) from None


def _compare(version: ModelVersion, artifact, digest: str, size: int) -> None:
    if digest != artifact.sha256 or size != artifact.size:
        raise ArtifactIntegrityError(
            f"{artifact.filename} of {version} has sha256 {digest}, but {artifact.sha256} was "
            "registered: the file changed on disk, so it was not loaded",
            filename=artifact.filename, expected=artifact.sha256, actual=digest,
        )


def read_verified(version: ModelVersion, artifact) -> bytes:
    """The bytes of one file, after checking them against the sha256 registered for it.
    A missing, replaced, symlinked or altered file raises ArtifactIntegrityError."""
    with _opened(version, artifact) as fh:
        data = fh.read()
    _compare(version, artifact, hashlib.sha256(data).hexdigest(), len(data))
    return data


def open_verified(version: ModelVersion, artifact):
    """An open file whose bytes were just hashed and match (positioned at the start), to
    stream to a client: the same handle is checked and sent, so a rename in between changes
    nothing."""
    fh = _opened(version, artifact)
    try:
        digest, size = hashlib.sha256(), 0
        while chunk := fh.read(store.CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
        _compare(version, artifact, digest.hexdigest(), size)
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh


def verify_files(version: ModelVersion) -> ArtifactIntegrityError | None:
    """Hash every file of a version against its row, streaming: the first problem, or None."""
    for artifact in version.files.all():
        try:
            open_verified(version, artifact).close()
        except ArtifactIntegrityError as exc:
            return exc
    return None


def load_version(version: ModelVersion, payloads=None) -> LoadedModel:
    """Verify every file the model needs, then load them. A mismatch loads nothing.
    `payloads` [(role, filename, bytes)] are bytes the caller has verified already."""
    files = sorted(version.files.all(), key=lambda f: f.position)
    model_file = next((f for f in files if f.role == FileRole.MODEL), None)
    if model_file is None:
        raise ArtifactError(f"{version} has no model file")
    preprocessor_files = [f for f in files if f.role == FileRole.PREPROCESSOR]
    # Read and verify everything before deserialising anything.
    if payloads is None:
        data = {f.filename: read_verified(version, f) for f in [model_file, *preprocessor_files]}
    else:
        data = {filename: payload for _role, filename, payload in payloads}
    estimator = deserialize(version.framework, data[model_file.filename], model_file.filename)
    preprocessors = [
        deserialize(Framework.SKLEARN, data[f.filename], f.filename) for f in preprocessor_files
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


class UnapprovedVersion(LookupError):
    """The version asked for is not in production: four eyes have not let it serve."""


class UnapprovedVersionWarning(UserWarning):
    """A version outside production was loaded, because the caller said they trust it."""


def load_model(name: str, version: str | None = None, stage: str | None = None, *,
               allow_unapproved: bool = False) -> LoadedModel:
    """Load a version into this process, after checking every file's sha256.

    - no version and no stage: the production version, the governed one;
    - `version="latest"`: the highest SemVer that passed validation (in `stage`, if given);
    - an exact version, `"1.2.0"` or `"v1.2.0"`; or the highest version in `stage`.

    Anything but a production version runs pickled code that four eyes have not passed in
    this process (with this process's secrets): it is refused with UnapprovedVersion unless
    `allow_unapproved=True` says the caller trusts it, and then loads with a warning. That
    holds for "latest" too: validation is a machine's check, approval a person's. Services
    and the prediction API never need it (an unapproved version answers from the sandbox).
    """
    import warnings

    from core.errors import ApplicationError
    from registry.models import Stage
    from registry.selectors import version_resolve

    if version is None and stage is None:
        stage = Stage.PRODUCTION
    try:
        found = version_resolve(name, version, stage)
    except ApplicationError as exc:
        raise LookupError(exc.message) from None
    if found.stage != Stage.PRODUCTION:
        if not allow_unapproved:
            raise UnapprovedVersion(
                f"{found} is in {found.stage}: four eyes have not let it serve, and loading it "
                "runs its code in this process. Pass allow_unapproved=True if you trust it, "
                "load_model(name) for the production version, or ask the prediction API, "
                "which runs it in the sandbox.")
        warnings.warn(f"loading {found}, which is in {found.stage}, not production: "
                      "validated, perhaps, but not approved", UnapprovedVersionWarning,
                      stacklevel=3)
    return load_version(found)
