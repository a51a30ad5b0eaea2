"""The trust boundary: a long-lived process deserialises only versions four eyes let serve.

The artifact here is a real model that also runs code as it is unpickled: it writes a marker
file, but only when Django is loaded in the process that unpickles it (that is, when it is
not in the sandbox, which never imports Django). In the sandbox it behaves, so it passes
validation; anywhere else the marker betrays it.
"""

from __future__ import annotations

import io
import json

import joblib
import numpy as np
import pytest

from governance.selectors import latest_validation
from tests import helpers
from tests.helpers import hiding_bytes

pytestmark = pytest.mark.django_db(transaction=True)  # validation runs on commit
ROWS = [[1.0, 2.0, 3.0], [-1.0, 0.5, 0.0]]


def expected_predictions():
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    return model.predict(np.asarray(ROWS)).tolist()


@pytest.fixture
def hiding(tmp_path, data_scientist, churn_model):
    marker = tmp_path / "marker"
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                      data=hiding_bytes(marker))
    run = latest_validation(version)
    assert run.status == "passed", [(c.name, c.detail) for c in run.checks.all()]
    return version, marker


def _predict_version(client, number="1.0.0"):
    return client.post(f"/api/v1/models/churn_prediction/versions/{number}/predict/",
                       json.dumps({"inputs": ROWS}), content_type="application/json")


def _infer_version(client, number="1.0.0"):
    body = {"inputs": [{"name": "input-0", "shape": [2, 3], "datatype": "FP64",
                        "data": [v for row in ROWS for v in row]}]}
    return client.post(f"/v2/models/churn_prediction/versions/{number}/infer",
                       json.dumps(body), content_type="application/json")


def test_validation_never_unpickles_in_the_worker(hiding):
    _version, marker = hiding
    assert not marker.exists()


@pytest.mark.parametrize("stage", ["experiment", "staging", "archived"])
def test_a_version_four_eyes_did_not_pass_answers_from_the_sandbox_only(
    hiding, api, data_scientist, stage
):
    version, marker = hiding
    if stage != "experiment":
        helpers.force_stage(version, stage)
    client = api(data_scientist)
    rest = _predict_version(client)
    assert rest.status_code == 200, rest.json()
    assert rest.json()["predictions"] == expected_predictions()
    assert rest.json()["routed_to"] == "direct"
    oip = _infer_version(client)
    assert oip.status_code == 200, oip.json()
    assert oip.json()["outputs"][0]["data"] == expected_predictions()
    assert not marker.exists(), "the web process unpickled an unapproved version"


def test_the_same_artifact_in_production_is_loaded_here(hiding, api, viewer):
    """The control: once four eyes (here an admin's forced move) let it serve, this process
    loads it, and the marker shows the artifact would have been caught above."""
    version, marker = hiding
    helpers.force_stage(version, "production")
    response = api(viewer).post("/api/v1/models/churn_prediction/predict/",
                                json.dumps({"inputs": ROWS}), content_type="application/json")
    assert response.status_code == 200, response.json()
    assert marker.exists()


def test_an_unknown_output_of_a_sandboxed_version_is_a_400(hiding, api, data_scientist):
    body = {"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP64",
                        "data": ROWS[0]}], "outputs": [{"name": "embedding"}]}
    response = api(data_scientist).post("/v2/models/churn_prediction/versions/1.0.0/infer",
                                        json.dumps(body), content_type="application/json")
    assert response.status_code == 400
    assert "embedding" in response.json()["error"]
