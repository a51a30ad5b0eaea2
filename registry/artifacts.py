"""Turning verified bytes into a model that predicts. Framework code only: no Django here.

`registry.loaders` verifies bytes against the database and calls this; the validation sandbox
(a separate, unprivileged process without Django or secrets) calls it directly.
"""

from __future__ import annotations

import functools
import io
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SKLEARN, TORCH, ONNX = "sklearn", "torch", "onnx"

# Rows reach a model as a NumPy matrix already in the order of the signature's columns (the
# input layer maps names to positions, and validation's `signature` check compares those
# columns with the `feature_names_in_` the model was fitted with), so scikit-learn's
# per-call warning for a model fitted on a DataFrame says nothing new: it filled the log with
# one line per request. Building a DataFrame per request to silence it would cost more than the
# forest's own predict on a single row.
warnings.filterwarnings("ignore", message="X does not have valid feature names",
                        category=UserWarning, module=r"sklearn\.")


class ArtifactError(Exception):
    """A version's artifact cannot be loaded. The message names the file, never a path."""


class ArtifactIntegrityError(ArtifactError):
    """A file's bytes do not match the sha256 recorded at registration: nothing was loaded."""

    def __init__(self, message: str, *, filename: str = "", expected: str = "",
                 actual: str | None = None):
        super().__init__(message)
        self.filename, self.expected, self.actual = filename, expected, actual


class ArtifactMissing(ArtifactIntegrityError):
    """A registered file (or the version's folder) is gone from the store."""


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
        if self.framework == TORCH:
            return torch_forward(self.estimator, X)
        if self.framework == ONNX:
            return onnx_run(self.estimator, X)[0]
        return np.asarray(self.estimator.predict(X))

    @property
    def has_probabilities(self) -> bool:
        if self.framework == ONNX:
            return len(self.estimator.get_outputs()) > 1
        return self.framework == SKLEARN and hasattr(self.estimator, "predict_proba")

    def __getattr__(self, name):
        # Only reached for what LoadedModel itself lacks: the estimator's own attributes
        # (classes_, n_features_in_, feature_importances_...), as on the object the team saved.
        estimator = self.__dict__.get("estimator")
        if estimator is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(estimator, name)

    def predict_proba(self, rows) -> np.ndarray | None:
        if not self.has_probabilities:
            return None
        X = self._prepare(rows)
        if self.framework == ONNX:
            return np.asarray(onnx_run(self.estimator, X)[1])
        return np.asarray(self.estimator.predict_proba(X))

    def predict_with_probabilities(self, rows) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions and, where the model has them, class probabilities, for one request.

        The preprocessors run once. For trees and forests, whose `predict` is by definition
        the class of the highest probability, the model runs once too: evaluating a forest
        twice doubled the cost of a request that wants both.
        """
        X = self._prepare(rows)
        if self.framework == TORCH:
            return torch_forward(self.estimator, X), None
        if self.framework == ONNX:
            outputs = onnx_run(self.estimator, X)
            return outputs[0], (np.asarray(outputs[1]) if len(outputs) > 1 else None)
        if not self.has_probabilities:
            return np.asarray(self.estimator.predict(X)), None
        probabilities = np.asarray(self.estimator.predict_proba(X))
        classes = self._classes_by_argmax
        if classes is not None:
            return classes.take(np.argmax(probabilities, axis=1), axis=0), probabilities
        return np.asarray(self.estimator.predict(X)), probabilities

    @functools.cached_property
    def _classes_by_argmax(self):
        """The classes when `predict` is exactly argmax of `predict_proba`, else None."""
        from sklearn.tree import BaseDecisionTree

        try:
            from sklearn.ensemble._forest import ForestClassifier
        except ImportError:  # a private module: if it moves, fall back to two calls
            return None
        final = self.estimator
        if hasattr(final, "steps"):  # a Pipeline: its last step predicts
            final = final.steps[-1][1]
        exact = isinstance(final, ForestClassifier) or (
            isinstance(final, BaseDecisionTree) and hasattr(final, "predict_proba"))
        if not exact or getattr(final, "n_outputs_", 1) != 1:
            return None
        return np.asarray(final.classes_)

    def declared_inputs(self) -> dict:
        """What the artifact says about its inputs: column count and names, when it says."""
        first = self.preprocessors[0] if self.preprocessors else self.estimator
        if self.framework == ONNX:
            shape = self.estimator.get_inputs()[0].shape
            width = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None
            return {"n_features": width, "names": None}
        if self.framework == TORCH:
            return {"n_features": None, "names": None}
        names = getattr(first, "feature_names_in_", None)
        return {
            "n_features": getattr(first, "n_features_in_", None),
            "names": [str(n) for n in names] if names is not None else None,
        }


def torch_forward(module, X) -> np.ndarray:
    import torch

    with torch.inference_mode():
        tensor = torch.as_tensor(np.asarray(X, dtype=np.float32))
        output = module(tensor)
    result = output.detach().cpu().numpy()
    if result.ndim == 2 and result.shape[1] == 1:
        result = result[:, 0]
    return result


def onnx_run(session, X) -> list:
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.asarray(X, dtype=np.float32)})


def deserialize(framework: str, data: bytes, filename: str):
    """Bytes (already verified) to a framework object. A pickle runs code: see the module doc."""
    try:
        if framework == SKLEARN:
            import joblib

            return joblib.load(io.BytesIO(data))
        if framework == TORCH:
            import torch

            with warnings.catch_warnings():
                # TorchScript is deprecated in torch 2.13 but still the format we accept.
                warnings.simplefilter("ignore", DeprecationWarning)
                module = torch.jit.load(io.BytesIO(data), map_location="cpu")
            module.eval()
            return module
        if framework == ONNX:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            return onnxruntime.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
    except ArtifactError:
        raise
    except Exception as exc:
        raise ArtifactError(
            f"{filename} could not be loaded as {framework}: {type(exc).__name__}: {exc}"
        ) from exc
    raise ArtifactError(f"no loader for framework {framework!r}")
