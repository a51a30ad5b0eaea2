"""MLflow's python_function loader for a model downloaded from the model-governance server.

Shipped inside the model directory (code/governance_pyfunc.py) and imported by
`mlflow.pyfunc.load_model`, so the client needs only mlflow, joblib and the model's framework.
Every file listed in data/manifest.json is checked against its sha256 before anything is
deserialised: a pickle is code, and what runs must be exactly what the registry recorded.
Standard library, numpy and the framework only: no Django, nothing of the server.
"""

import hashlib
import io
import json
import os

import numpy as np


class IntegrityError(Exception):
    """A file of the directory is not the one the registry recorded."""


def _verified(data_path, entry):
    with open(os.path.join(data_path, os.path.basename(entry["name"])), "rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"] or len(data) != entry["size"]:
        raise IntegrityError(
            f"{entry['name']} has sha256 {digest}, but the registry recorded "
            f"{entry['sha256']}: not loaded")
    return data


def _deserialize(framework, data):
    if framework == "sklearn":
        import joblib

        return joblib.load(io.BytesIO(data))
    if framework == "torch":
        import torch

        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
        module.eval()
        return module
    if framework == "onnx":
        import onnxruntime

        return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    raise ValueError(f"no loader for framework {framework!r}")


class GovernedModel:
    """The verified model and its preprocessors: `predict` transforms, then predicts, as the
    server's prediction API does. The estimator is `.estimator` (attributes forwarded)."""

    def __init__(self, framework, estimator, preprocessors, columns):
        self.framework = framework
        self.estimator = estimator
        self.preprocessors = preprocessors
        self.columns = columns

    def __getattr__(self, name):
        if name in {"estimator", "framework", "preprocessors", "columns"}:
            raise AttributeError(name)
        return getattr(self.estimator, name)

    def get_raw_model(self):
        """The estimator itself (mlflow's PyFuncModel.get_raw_model asks for it)."""
        return self.estimator

    def _rows(self, model_input):
        if hasattr(model_input, "columns") and hasattr(model_input, "to_numpy"):
            if self.columns and set(self.columns) <= set(map(str, model_input.columns)):
                model_input = model_input[self.columns]
            return model_input.to_numpy()
        return np.asarray(model_input)

    def predict(self, model_input, params=None):
        X = self._rows(model_input)
        for preprocessor in self.preprocessors:
            X = preprocessor.transform(X)
        if self.framework == "torch":
            import torch

            with torch.inference_mode():
                out = self.estimator(torch.as_tensor(np.asarray(X, dtype=np.float32)))
            result = out.detach().cpu().numpy()
            return result[:, 0] if result.ndim == 2 and result.shape[1] == 1 else result
        if self.framework == "onnx":
            name = self.estimator.get_inputs()[0].name
            return self.estimator.run(None, {name: np.asarray(X, dtype=np.float32)})[0]
        return np.asarray(self.estimator.predict(X))


def _load_pyfunc(data_path):
    with open(os.path.join(data_path, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    entries = manifest["files"]
    # Every file is verified before any is deserialised.
    payloads = [(entry, _verified(data_path, entry)) for entry in entries]
    model = [data for entry, data in payloads if entry["role"] == "model"]
    if len(model) != 1:
        raise IntegrityError("the manifest names no model file")
    preprocessors = [_deserialize("sklearn", data) for entry, data in payloads
                     if entry["role"] == "preprocessor"]
    return GovernedModel(manifest["framework"], _deserialize(manifest["framework"], model[0]),
                         preprocessors, manifest.get("columns") or [])
