"""Reference samples: sent with a registration or added later, checked against the
signature, profiled by validation (with the model's predictions on their rows)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from governance.models import ReferenceProfile, ValidationRun
from registry.models import ArtifactFile
from tests import helpers
from tests.helpers import Unchanged, register, upload

URL = "/api/v1/models/churn_prediction/versions/"
# The samples' labels are random, so validation measures accuracy near 0.5: a version here
# claims no metric, or claimed_metrics would (rightly) fail (tests/governance/test_evaluation).
NO_CLAIMS = helpers.metadata(metrics={})


def reference_csv(rows: int = 200, *, header=None, seed=0, extra=None) -> bytes:
    rng = np.random.default_rng(seed)
    header = header or [*helpers.FEATURES, "churned", "member_id"]
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    for i in range(rows):
        values = [f"{rng.normal():.4f}", f"{rng.normal():.4f}", f"{rng.normal():.4f}",
                  str(int(rng.integers(0, 2))), f"m{i}"]
        out.write(",".join(values[:len(header)]) + "\n")
    if extra:
        out.write(extra)
    return out.getvalue().encode()


@pytest.mark.django_db(transaction=True)
def test_a_reference_sent_with_the_registration_is_stored_and_profiled(
    api, data_scientist, churn_model, store_root
):
    data = reference_csv()
    response = register(api(data_scientist), "churn_prediction", meta=NO_CLAIMS,
                        reference=upload("reference.csv", data))
    assert response.status_code == 201, response.json()
    files = {f["filename"]: f["role"] for f in response.json()["files"]}
    assert files["reference.csv"] == "reference"
    folder = Path(store_root) / "experiments/churn_prediction/v1.0.0"
    assert (folder / "reference.csv").read_bytes() == data
    document = json.loads((folder / "metadata.json").read_text())
    assert {"name": "reference.csv", "role": "reference", "size": len(data),
            "sha256": helpers.sha256(data)} in document["files"]
    # The registration's validation predicted on the reference rows and built the profile.
    run = ValidationRun.objects.get(version__version="1.0.0")
    assert run.status == "passed", run.summary
    predict = run.checks.get(name="predict")
    assert predict.measured["rows_source"] == "input_example" or "reference" in predict.detail
    profile = ReferenceProfile.objects.get(version__version="1.0.0")
    assert profile.n_rows == 200 and profile.sha256 == helpers.sha256(data)
    assert set(profile.features) == set(helpers.FEATURES)
    tenure = profile.features["tenure"]
    assert tenure["kind"] == "numeric" and sum(tenure["counts"]) == 200
    assert profile.predictions["kind"] == "categorical"  # a classifier's classes
    assert profile.predicted_rows == 200 and profile.predictions["n"] == 200


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (reference_csv(header=["tenure", "visits", "churned"]), "no column 'late_returns'"),
        (reference_csv(extra="1.0,abc,2.0,0,x\n"), "row 201, column 'visits': 'abc'"),
        (reference_csv(extra="1.0,2.0\n"), "row 201: 2 values for 5 columns"),
        (reference_csv(rows=5), "5 rows; a reference sample needs at least 20"),
        (b"", "empty"),
        (b"\xff\xfe\x00garbage", "UTF-8"),
        (reference_csv(extra="1.0,inf,2.0,0,x\n"), "not a finite number"),
    ],
)
def test_a_reference_that_does_not_fit_the_signature_is_refused(
    api, data_scientist, churn_model, data, words
):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction",
                            reference=upload("reference.csv", data))
    assert response.status_code in (400, 422), response.json()
    assert "reference" in response.json()["errors"]
    assert words in response.json()["detail"]


def test_a_reference_must_be_a_csv_and_only_one(api, data_scientist, churn_model):
    with Unchanged():
        wrong = register(api(data_scientist), "churn_prediction",
                         reference=upload("reference.parquet", reference_csv()))
        two = register(api(data_scientist), "churn_prediction",
                       reference=[upload("a.csv", reference_csv()),
                                  upload("b.csv", reference_csv())])
    assert wrong.status_code == 400 and "CSV" in wrong.json()["detail"]
    assert two.status_code == 400 and "one reference sample" in two.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_reference_added_later_is_placed_in_the_stage_folder_and_validated(
    api, data_scientist, churn_model, store_root
):
    version = helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                      meta=NO_CLAIMS)
    helpers.force_stage(version, "production")
    data = reference_csv(seed=3)
    url = f"{URL}1.0.0/reference/"
    response = api(data_scientist).post(url, {"reference": upload("validation_rows.csv", data)},
                                        format="multipart")
    assert response.status_code == 201, response.json()
    assert (Path(store_root) / "production/churn_prediction/v1.0.0/validation_rows.csv"
            ).read_bytes() == data
    assert ValidationRun.objects.filter(version=version, trigger="reference",
                                        status="passed").exists()
    assert ReferenceProfile.objects.get(version=version).n_rows == 200
    with Unchanged():
        again = api(data_scientist).post(url, {"reference": upload("more.csv", data)},
                                         format="multipart")
    assert again.status_code == 409


def test_adding_a_reference_needs_the_owner_and_a_good_file(api, data_scientist, viewer,
                                                             other_data_scientist,
                                                             churn_model):
    helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist)
    url = f"{URL}1.0.0/reference/"
    cases = [
        (viewer, {"reference": upload("r.csv", reference_csv())}, 403),
        (other_data_scientist, {"reference": upload("r.csv", reference_csv())}, 403),
        (data_scientist, {"reference": upload("r.csv", reference_csv(rows=3))}, 422),
        (data_scientist, {"reference": upload("r.txt", reference_csv())}, 400),
        (data_scientist, {"other": upload("r.csv", reference_csv())}, 400),
    ]
    for person, form, status in cases:
        with Unchanged(allow_actions=("permission.denied",)):
            response = api(person).post(url, form, format="multipart")
        assert response.status_code == status, (form, response.json())
    assert not ArtifactFile.objects.filter(role="reference").exists()


@pytest.mark.django_db(transaction=True)
def test_missing_values_in_the_reference_do_not_fail_validation(data_scientist, churn_model):
    from registry import services, store

    data = reference_csv(extra="".join(",0.5,0.2,1,x\n" for _ in range(30)))  # tenure empty
    incoming = [store.ingest_stream(io.BytesIO(helpers.sklearn_bytes()), name="model.joblib",
                                    role="model"),
                store.ingest_stream(io.BytesIO(data), name="reference.csv", role="reference")]
    version = services.version_register(model_name="churn_prediction", version="1.0.0",
                                        framework="sklearn",
                                        metadata=NO_CLAIMS,
                                        files=incoming, actor=data_scientist)
    run = ValidationRun.objects.get(version=version)
    assert run.status == "passed", [(c.name, c.detail) for c in run.checks.all()]
    assert "reference" in run.checks.get(name="predict").detail
    profile = ReferenceProfile.objects.get(version=version)
    assert profile.features["tenure"]["missing"] == 30
    assert profile.predicted_rows == 200  # the complete rows
