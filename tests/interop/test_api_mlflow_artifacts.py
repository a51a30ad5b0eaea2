"""A version as an MLflow model directory: listed and downloaded through MLflow's artifact
proxy paths, loaded by mlflow.pyfunc through the loader shipped inside it."""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pytest

from tests import helpers
from tests.interop.conftest import MODEL

ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
ROOT = f"registry/{MODEL}"


def _list(client, path):
    return client.get(ARTIFACTS, {"path": path})


def _download(client, root, tmp_path, folder=""):
    """Fetch a directory the way MLflow's HTTP artifact repository does: list, recurse, get."""
    for entry in _list(client, f"{root}/{folder}".rstrip("/")).json()["files"]:
        path = f"{folder}/{entry['path']}".lstrip("/")
        if entry["is_dir"]:
            _download(client, root, tmp_path, path)
        else:
            response = client.get(f"{ARTIFACTS}/{root}/{path}")
            assert response.status_code == 200, response.content[:300]
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"".join(response.streaming_content)
                               if response.streaming else response.content)
    return tmp_path


def test_the_directory_lists_mlmodel_code_and_data(api, data_scientist, versions):
    client = api(data_scientist)
    root = _list(client, f"{ROOT}/1").json()["files"]
    assert [(f["path"], f["is_dir"]) for f in root] == [
        ("MLmodel", False), ("code", True), ("data", True), ("requirements.txt", False)]
    data = _list(client, f"{ROOT}/1/data").json()["files"]
    assert [f["path"] for f in data] == ["manifest.json", "model.joblib"]
    model_file = versions["old"].model_file
    assert data[1]["file_size"] == model_file.size


def test_mlmodel_names_the_shipped_loader_and_the_manifest_the_sha256(api, data_scientist,
                                                                      versions):
    client = api(data_scientist)
    mlmodel = json.loads(client.get(f"{ARTIFACTS}/{ROOT}/1/MLmodel").content)
    flavor = mlmodel["flavors"]["python_function"]
    assert (flavor["loader_module"], flavor["code"], flavor["data"]) == (
        "governance_pyfunc", "code", "data")
    manifest = json.loads(client.get(f"{ARTIFACTS}/{ROOT}/1/data/manifest.json").content)
    assert manifest["files"] == [{"name": "model.joblib", "role": "model",
                                  "size": versions["old"].model_file.size,
                                  "sha256": versions["old"].sha256}]
    response = client.get(f"{ARTIFACTS}/{ROOT}/1/data/model.joblib")
    assert b"".join(response.streaming_content) == helpers.sklearn_bytes()
    assert response["X-Checksum-SHA256"] == versions["old"].sha256


def test_a_bad_artifact_path_is_refused(api, data_scientist, versions):
    client = api(data_scientist)
    for path, status in [(f"{ROOT}/1/../2", 400), ("registry", 404), ("other/x/1", 404),
                         (f"{ROOT}/1/nothing", 404), (f"{ROOT}/9", 404)]:
        response = _list(client, path)
        assert response.status_code == status, (path, response.json())
        assert response.json()["error_code"] in {"INVALID_PARAMETER_VALUE",
                                                  "RESOURCE_DOES_NOT_EXIST"}
    assert client.get(f"{ARTIFACTS}/{ROOT}/1/data/secret").status_code == 404


def test_a_changed_file_is_not_served_and_flags_the_version(api, data_scientist, versions,
                                                            store_root):
    from registry import store

    folder = store.locate_version_dir(MODEL, "1.0.0", "production")
    (folder / "model.joblib").write_bytes(b"not the registered bytes")
    response = api(data_scientist).get(f"{ARTIFACTS}/{ROOT}/1/data/model.joblib")
    assert (response.status_code, response.json()["error_code"]) == (409, "RESOURCE_CONFLICT")
    versions["old"].refresh_from_db()
    assert versions["old"].integrity_failed_at is not None


def test_mlflow_pyfunc_loads_the_downloaded_directory_and_predicts(api, data_scientist,
                                                                   versions, tmp_path):
    import mlflow.pyfunc

    local = _download(api(data_scientist), f"{ROOT}/1", tmp_path / "model")
    loaded = mlflow.pyfunc.load_model(str(local))
    rows = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]])
    expected = joblib.load(io.BytesIO(helpers.sklearn_bytes())).predict(rows)
    np.testing.assert_array_equal(loaded.predict(rows), expected)
    # The estimator's own attributes are reachable, as with our load_model.
    assert list(loaded.get_raw_model().classes_) == [0, 1]


def test_the_shipped_loader_refuses_a_file_that_is_not_the_registered_one(
        api, data_scientist, versions, tmp_path):
    import mlflow.pyfunc

    local = _download(api(data_scientist), f"{ROOT}/1", tmp_path / "model")
    (local / "data" / "model.joblib").write_bytes(helpers.sklearn_bytes(seed=1))
    with pytest.raises(Exception, match="the registry recorded"):
        mlflow.pyfunc.load_model(str(local))
