"""Loading a registered version into memory, one function for every framework.

Each file is read once into memory, its sha256 compared with the row, and only then handed to
the framework: what is loaded is exactly the bytes that were verified (no window in which the
file could change between check and load). A pickle is code, so this must only be called
where running the artifact is intended: validation's sandbox, the prediction cache after
validation, or a person's own `load_model` call.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from registry import store
from registry.models import FileRole, Framework, ModelVersion


class ArtifactError(Exception):
    """A version's artifact cannot be loaded. The message names the file, never a path."""


class ArtifactIntegrityError(ArtifactError):
    """A file's bytes do not match the sha256 recorded at registration: nothing was loaded."""


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


@dataclass
class LoadedModel:
    """A verified, loaded version. `predict` applies the preprocessors, then the model."""

    name: str
    version: str
    framework: str
    estimator: Any
    preprocessors: list = field(default_factory=list)
    feature_names: list[str] = field(default_factory=list)
    sha256: str = ""

    def _prepare(self, rows) -> Any:
        X = rows
        for preprocessor in self.preprocessors:
            X = preprocessor.transform(X)
        return X

    def predict(self, rows) -> np.ndarray:
        X = self._prepare(rows)
        if self.framework == Framework.TORCH:
            return _torch_forward(self.estimator, X)
        if self.framework == Framework.ONNX:
            return _onnx_run(self.estimator, X)[0]
        return np.asarray(self.estimator.predict(X))

    @property
    def has_probabilities(self) -> bool:
        if self.framework == Framework.ONNX:
            return len(self.estimator.get_outputs()) > 1
        return self.framework == Framework.SKLEARN and hasattr(self.estimator, "predict_proba")

    def predict_proba(self, rows) -> np.ndarray | None:
        if not self.has_probabilities:
            return None
        X = self._prepare(rows)
        if self.framework == Framework.ONNX:
            return np.asarray(_onnx_run(self.estimator, X)[1])
        return np.asarray(self.estimator.predict_proba(X))


def _torch_forward(module, X) -> np.ndarray:
    import torch

    with torch.inference_mode():
        tensor = torch.as_tensor(np.asarray(X, dtype=np.float32))
        output = module(tensor)
    result = output.detach().cpu().numpy()
    if result.ndim == 2 and result.shape[1] == 1:
        result = result[:, 0]
    return result


def _onnx_run(session, X) -> list:
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(X, dtype=np.float32)})


def _deserialize(framework: str, data: bytes, filename: str):
    try:
        if framework == Framework.SKLEARN:
            import joblib

            return joblib.load(io.BytesIO(data))
        if framework == Framework.TORCH:
            import torch

            with warnings.catch_warnings():
                # TorchScript is deprecated in torch 2.13 but still the format we accept.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
            module.eval()
            return module
        if framework == Framework.ONNX:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            return onnxruntime.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(f"{filename} could not be loaded as {framework}: {exc}") from exc
    raise ArtifactError(f"no loader for framework {framework!r}")


def load_version(version: ModelVersion) -> LoadedModel:
    """Verify every file the model needs, then load them. A mismatch loads nothing."""
    files = sorted(version.files.all(), key=lambda f: f.position)
    model_file = next((f for f in files if f.role == FileRole.MODEL), None)
    if model_file is None:
        raise ArtifactError(f"{version} has no model file")
    preprocessor_files = [f for f in files if f.role == FileRole.PREPROCESSOR]
    # Read and verify everything before deserialising anything.
    payloads = {f.pk: read_verified(version, f) for f in [model_file, *preprocessor_files]}
    estimator = _deserialize(version.framework, payloads[model_file.pk], model_file.filename)
    preprocessors = [
        _deserialize(Framework.SKLEARN, payloads[f.pk], f.filename) for f in preprocessor_files
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
