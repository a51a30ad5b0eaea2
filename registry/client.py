"""Load a registered model from another service: over the REST API, with no Django and no
database. This one file is the client; it needs only `requests`, `joblib` and the model's
framework (scikit-learn, torch or onnxruntime), so a service may copy it instead of
installing the project::

    from registry.client import load_model          # or, copied: from client import load_model
    model = load_model("churn_prediction", url="https://models.example.org",
                       token="mgt_...")            # the production version
    model.predict(rows)
    model.classes_                                  # the estimator's own attributes

`url` and `token` default to the environment variables `MODEL_GOVERNANCE_URL` and
`MODEL_GOVERNANCE_TOKEN`. The token is a service account's API token (its account must be
a reader of the model: the admin's "Readers" of the registered model) or a person's JWT.

What is trusted, and what is checked:

- The version's files and their sha256 come from the registry's API (`/api/v1/models/<name>/
  versions/...`); every byte loaded is hashed and compared with that list before anything
  is unpickled. A file whose hash differs from the list is refused (IntegrityError).
- Files are cached on disk by their sha256 (`MODEL_GOVERNANCE_CACHE`, default
  `~/.cache/model-governance/`), so a second load downloads nothing. A cached file is hashed
  at every load; one that changed is moved aside (`<sha256>.tampered-<time>`, kept for
  whoever investigates) and downloaded again. The client deletes only the partial download
  it wrote itself.
- Only a production version loads by default: anything else runs code four eyes have not
  passed, so it takes `allow_unapproved=True` and warns (UnapprovedVersionWarning). A service
  account's token downloads production versions only, whatever the client says.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

API_PREFIX = "/api/v1"
LOADED_ROLES = ("model", "preprocessor")
CHUNK_SIZE = 1 << 20
__all__ = ["load_model", "ModelLoadError", "IntegrityError", "NotFound", "UnapprovedVersion",
           "UnapprovedVersionWarning", "RemoteModel", "cache_directory"]


class ModelLoadError(Exception):
    """The model could not be loaded; the message says why (the server's words, if any)."""


class NotFound(ModelLoadError, LookupError):
    """No such model or version, or none the token may read."""


class IntegrityError(ModelLoadError):
    """A file's bytes do not match the sha256 the registry lists for it: nothing was loaded."""


class UnapprovedVersion(ModelLoadError, LookupError):
    """The version is not in production; pass allow_unapproved=True if you trust it."""


class UnapprovedVersionWarning(UserWarning):
    """A version outside production was loaded, because the caller said they trust it."""


def cache_directory() -> Path:
    configured = os.environ.get("MODEL_GOVERNANCE_CACHE")
    if configured:
        return Path(configured).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "model-governance"


@dataclass
class RemoteModel:
    """A verified, loaded version. `predict` applies the preprocessors, then the model; any
    other attribute is the estimator's (`classes_`, `n_features_in_`, ...)."""

    name: str
    version: str
    stage: str
    framework: str
    estimator: Any
    preprocessors: list = field(default_factory=list)
    feature_names: list = field(default_factory=list)
    sha256: str = ""
    metadata: dict = field(default_factory=dict, repr=False)

    def _prepare(self, rows):
        for preprocessor in self.preprocessors:
            rows = preprocessor.transform(rows)
        return rows

    def predict(self, rows):
        X = self._prepare(rows)
        if self.framework == "torch":
            import numpy as np
            import torch

            with torch.inference_mode():
                out = self.estimator(torch.as_tensor(np.asarray(X, dtype=np.float32)))
            result = out.detach().cpu().numpy()
            return result[:, 0] if result.ndim == 2 and result.shape[1] == 1 else result
        if self.framework == "onnx":
            return self._onnx(X)[0]
        return self.estimator.predict(X)

    def predict_proba(self, rows):
        X = self._prepare(rows)
        if self.framework == "onnx":
            outputs = self._onnx(X)
            return outputs[1] if len(outputs) > 1 else None
        if self.framework == "sklearn" and hasattr(self.estimator, "predict_proba"):
            return self.estimator.predict_proba(X)
        return None

    def _onnx(self, X):
        import numpy as np

        name = self.estimator.get_inputs()[0].name
        return self.estimator.run(None, {name: np.asarray(X, dtype=np.float32)})

    def __getattr__(self, name):
        estimator = self.__dict__.get("estimator")
        if estimator is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(estimator, name)


class Client:
    """The registry at `url`, read with `token`, caching files in `cache`."""

    def __init__(self, url: str | None = None, token: str | None = None, *,
                 cache: str | os.PathLike | None = None, timeout: float = 60,
                 session: requests.Session | None = None):
        url = url or os.environ.get("MODEL_GOVERNANCE_URL")
        token = token or os.environ.get("MODEL_GOVERNANCE_TOKEN")
        if not url:
            raise ModelLoadError("no registry URL: pass url= or set MODEL_GOVERNANCE_URL")
        if not token:
            raise ModelLoadError("no token: pass token= or set MODEL_GOVERNANCE_TOKEN")
        self.url = url.rstrip("/")
        self.cache = Path(cache).expanduser() if cache is not None else cache_directory()
        self.timeout = timeout
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.downloads = 0  # files fetched from the server by this client

    # --- the API ---------------------------------------------------------------------------

    def _get(self, path: str, *, params=None, stream: bool = False) -> requests.Response:
        try:
            response = self.session.get(self.url + API_PREFIX + path, params=params,
                                        stream=stream, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ModelLoadError(f"the registry at {self.url} did not answer: {exc}") from None
        if response.status_code == 200:
            return response
        try:
            detail = response.json().get("detail") or response.text[:300]
        except ValueError:
            detail = response.text[:300]
        response.close()
        if response.status_code == 404:
            raise NotFound(detail)
        raise ModelLoadError(f"{response.status_code} from {path}: {detail}")

    def version(self, name: str, version: str | None = None,
                stage: str | None = "production") -> dict:
        """The registry's record of the version `load_model` means (see load_model)."""
        base = f"/models/{quote(name, safe='')}/versions/"
        if version is None or version == "latest":
            params = {"page_size": 1}  # the list is highest SemVer first
            if stage:
                params["stage"] = stage
            if version == "latest":
                params["validated"] = "true"
            found = self._get(base, params=params).json()["results"]
            if not found:
                where = (f" in {stage}" if stage else "") + (
                    " that passed validation" if version == "latest" else "")
                raise NotFound(f"{name!r} has no version{where}")
            return found[0]
        if version[:1] in ("v", "V") and version[1:2].isdigit():
            version = version[1:]  # the spelling of the model directories teams keep
        record = self._get(base + quote(version, safe="") + "/").json()
        if stage and record["stage"] != stage:
            raise NotFound(f"{name} {version} is in {record['stage']}, not {stage} (pass "
                           "stage=None to load it from any stage)")
        return record

    # --- files, verified and cached --------------------------------------------------------

    def _cached(self, sha256: str) -> bytes | None:
        path = self.cache / sha256
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError:  # a symbolic link where a cached file should be
            data = None
        else:
            with os.fdopen(fd, "rb") as fh:
                data = fh.read()
            if hashlib.sha256(data).hexdigest() == sha256:
                return data
        aside = path.with_name(f"{sha256}.tampered-{time.strftime('%Y%m%dT%H%M%S')}-"
                               f"{os.getpid()}")
        os.replace(path, aside)
        warnings.warn(f"the cached file {path} did not match its sha256: moved to {aside.name} "
                      "and downloaded again", RuntimeWarning, stacklevel=4)
        return None

    def fetch(self, name: str, version: str, file: dict) -> bytes:
        """The bytes of one file of a version, from the cache or the server, verified."""
        sha256, size = file["sha256"].lower(), int(file["size"])
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise IntegrityError(f"the registry lists no valid sha256 for {file['filename']}")
        data = self._cached(sha256)
        if data is not None:
            return data
        self.cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = f"/models/{quote(name, safe='')}/versions/{quote(version, safe='')}/files/" \
               f"{quote(file['filename'], safe='')}"
        response = self._get(path, stream=True)
        self.downloads += 1
        digest, buffer = hashlib.sha256(), io.BytesIO()
        partial = tempfile.NamedTemporaryFile(dir=self.cache, prefix=f".{sha256}.",
                                              suffix=".part", delete=False)
        placed = False
        try:
            with partial, response:
                try:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        digest.update(chunk)
                        buffer.write(chunk)
                        partial.write(chunk)
                        if buffer.tell() > size:
                            break  # more than listed: the hash cannot match either
                except requests.RequestException as exc:
                    raise ModelLoadError(f"the download of {file['filename']} broke off: "
                                         f"{exc}") from None
                partial.flush()
                os.fsync(partial.fileno())
            actual = digest.hexdigest()
            if actual != sha256 or buffer.tell() != size:
                raise IntegrityError(
                    f"{file['filename']} of {name} {version} arrived with sha256 {actual}, but "
                    f"the registry lists {sha256}: refused, nothing was loaded")
            os.replace(partial.name, self.cache / sha256)
            placed = True
        finally:
            if not placed:
                os.unlink(partial.name)  # ours: the only file the client ever deletes
        return buffer.getvalue()

    # --- loading ---------------------------------------------------------------------------

    def load_model(self, name: str, version: str | None = None,
                   stage: str | None = "production", *,
                   allow_unapproved: bool = False) -> RemoteModel:
        record = self.version(name, version, stage)
        label = f"{record['model']} {record['version']}"
        if record["stage"] != "production":
            if not allow_unapproved:
                raise UnapprovedVersion(
                    f"{label} is in {record['stage']}: four eyes have not let it serve, and "
                    "loading it runs its code in this process. Pass allow_unapproved=True if "
                    "you trust it.")
            warnings.warn(f"loading {label}, which is in {record['stage']}, not production",
                          UnapprovedVersionWarning, stacklevel=3)
        files = sorted((f for f in record["files"] if f["role"] in LOADED_ROLES),
                       key=lambda f: f["position"])
        model_files = [f for f in files if f["role"] == "model"]
        if not model_files:
            raise ModelLoadError(f"{label} has no model file")
        # Every byte verified before anything is deserialised.
        payloads = {f["filename"]: self.fetch(record["model"], record["version"], f)
                    for f in files}
        estimator = _deserialize(record["framework"], payloads[model_files[0]["filename"]],
                                 model_files[0]["filename"])
        preprocessors = [_deserialize("sklearn", payloads[f["filename"]], f["filename"])
                         for f in files if f["role"] == "preprocessor"]
        return RemoteModel(
            name=record["model"], version=record["version"], stage=record["stage"],
            framework=record["framework"], estimator=estimator, preprocessors=preprocessors,
            feature_names=[c["name"] for c in record.get("signature") or []]
            or list(record.get("features") or []),
            sha256=model_files[0]["sha256"], metadata=record,
        )


def _deserialize(framework: str, data: bytes, filename: str):
    try:
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
    except Exception as exc:
        raise ModelLoadError(f"{filename} could not be loaded as {framework}: "
                             f"{type(exc).__name__}: {exc}") from exc
    raise ModelLoadError(f"no loader for framework {framework!r}")


def load_model(name: str, version: str | None = None, stage: str | None = "production", *,
               url: str | None = None, token: str | None = None,
               allow_unapproved: bool = False, cache: str | os.PathLike | None = None,
               timeout: float = 60) -> RemoteModel:
    """Load a version from the registry at `url`, verified and cached.

    - no version: the highest version in `stage` (production: the production version);
    - `version="latest"`: the highest SemVer that passed validation, in `stage` if one is
      given (`stage=None` for any stage);
    - an exact version, `"1.2.0"` or `"v1.2.0"`, which must be in `stage` if one is given.

    A version outside production is refused unless `allow_unapproved=True` (then it warns).
    """
    client = Client(url, token, cache=cache, timeout=timeout)
    return client.load_model(name, version, stage, allow_unapproved=allow_unapproved)
