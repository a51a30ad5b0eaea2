"""registry.client: another service loads a model over the REST API, verified and cached.

The client speaks HTTP through `requests`; here its session is connected to the app itself
(Django's test client, in this test's transaction) by a transport adapter
(tests.helpers.AppAdapter) that can also play a man in the middle. The same client against a real gunicorn, in a process without Django,
is tests/e2e/test_client_e2e.py.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from django.test import Client as DjangoClient

from core import roles
from predictions import services as predictions
from registry import client as remote
from registry import services
from registry.models import Team
from tests import helpers
from tests.conftest import _person

ROWS = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2]])
URL = "http://registry.test"


def _client(token, cache, adapter=None):
    session = helpers.app_session(URL, adapter)
    return remote.Client(URL, token, cache=cache, session=session), session.app_adapter


def _downloads(adapter):
    return [path for path in adapter.paths if "/files/" in path]


@pytest.fixture
def granted(data_scientist, admin_user, django_user_model):
    """churn_prediction (team loans) 1.0.0 in production with a scaler, 1.1.0 in staging,
    validated; a service account of team loans granted it, and its token."""
    loans = Team.objects.create(name="loans")
    loans.members.add(data_scientist)
    churn_model = services.model_create(name="churn_prediction", task_type="classification",
                                        owner=data_scientist, actor=data_scientist,
                                        team_name="loans")
    released = helpers.register_direct(
        "churn_prediction", "1.0.0", actor=data_scientist,
        preprocessors=[("scaler.pkl", helpers.sklearn_bytes("scaler"))])
    helpers.force_stage(released, "production")
    candidate = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist,
                                        data=helpers.sklearn_bytes(seed=1))
    helpers.mark_validated(candidate)
    helpers.force_stage(candidate, "staging")
    robot = _person(django_user_model, "loans-svc", roles.SERVICE)
    loans.members.add(robot)
    services.model_update(model=churn_model, actor=admin_user, readers=[robot])
    _row, token = predictions.api_token_create(user=robot, name="loans", actor=admin_user)
    return token


def _expected(rows=ROWS):
    scaler = joblib.load(io.BytesIO(helpers.sklearn_bytes("scaler")))
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    return model.predict_proba(scaler.transform(rows)), model


def test_a_service_token_loads_the_production_version_and_predicts(granted, tmp_path):
    client, adapter = _client(granted, tmp_path / "cache")
    loaded = client.load_model("churn_prediction")
    probabilities, original = _expected()
    assert (loaded.version, loaded.stage) == ("1.0.0", "production")
    np.testing.assert_allclose(loaded.predict_proba(ROWS), probabilities)
    np.testing.assert_array_equal(loaded.classes_, original.classes_)  # forwarded
    assert loaded.feature_names == helpers.FEATURES
    assert len(_downloads(adapter)) == 2  # the model and its scaler
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached == sorted([helpers.sha256(helpers.sklearn_bytes()),
                             helpers.sha256(helpers.sklearn_bytes("scaler"))])


def test_a_second_load_downloads_nothing(granted, tmp_path):
    cache = tmp_path / "cache"
    _client(granted, cache)[0].load_model("churn_prediction")
    before = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    client, adapter = _client(granted, cache)
    again = client.load_model("churn_prediction", version="v1.0.0")
    assert again.version == "1.0.0"
    assert _downloads(adapter) == []
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == before


def test_a_tampered_cache_file_is_set_aside_and_fetched_again(granted, tmp_path):
    cache = tmp_path / "cache"
    _client(granted, cache)[0].load_model("churn_prediction")
    digest = helpers.sha256(helpers.sklearn_bytes())
    marker = tmp_path / "marker"
    (cache / digest).write_bytes(helpers.hiding_bytes(marker))  # a pickle that runs code
    client, adapter = _client(granted, cache)
    with pytest.warns(RuntimeWarning, match="did not match its sha256"):
        loaded = client.load_model("churn_prediction")
    assert not marker.exists()
    np.testing.assert_allclose(loaded.predict_proba(ROWS), _expected()[0])
    assert [p.rsplit("/", 1)[-1] for p in _downloads(adapter)] == ["model.joblib"]
    assert (cache / digest).read_bytes() == helpers.sklearn_bytes()
    aside = [p for p in cache.iterdir() if p.name.startswith(f"{digest}.tampered-")]
    assert len(aside) == 1 and aside[0].read_bytes() == helpers.hiding_bytes(marker)


def test_bytes_that_do_not_match_the_listed_hash_are_refused(granted, tmp_path):
    """A proxy (or a compromised server) answers the download with other bytes: refused
    before anything is unpickled; the cache keeps what it had and gains nothing."""
    marker = tmp_path / "marker"
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "someone-elses-file").write_bytes(b"keep me")

    def swap(path, body):
        return helpers.hiding_bytes(marker) if path.endswith("/model.joblib") else body

    client, _adapter = _client(granted, cache, helpers.AppAdapter(tamper=swap))
    with pytest.raises(remote.IntegrityError, match="arrived with sha256"):
        client.load_model("churn_prediction")
    assert not marker.exists()
    assert [p.name for p in cache.iterdir()] == ["someone-elses-file"]  # no partial left
    assert (cache / "someone-elses-file").read_bytes() == b"keep me"


def test_latest_is_the_highest_validated_version_and_needs_allow_unapproved(granted,
                                                                          tmp_path):
    client, _adapter = _client(granted, tmp_path / "cache")
    # In production (the default stage), "latest" is the production version.
    assert client.load_model("churn_prediction", "latest").version == "1.0.0"
    with pytest.raises(remote.UnapprovedVersion, match="1.1.0 is in staging"):
        client.load_model("churn_prediction", "latest", stage=None)


def test_a_person_may_load_a_staging_version_with_a_warning(granted, data_scientist, tmp_path):
    from rest_framework_simplejwt.tokens import RefreshToken

    jwt = str(RefreshToken.for_user(data_scientist).access_token)
    client, _adapter = _client(jwt, tmp_path / "cache")
    with pytest.warns(remote.UnapprovedVersionWarning, match="staging, not production"):
        loaded = client.load_model("churn_prediction", "latest", stage=None,
                                   allow_unapproved=True)
    assert loaded.version == "1.1.0"


def test_a_service_token_downloads_production_versions_only(granted, tmp_path):
    """Its account runs what it downloads: four eyes passed only production."""
    client, _adapter = _client(granted, tmp_path / "cache")
    with pytest.raises(remote.NotFound, match="production versions only"), \
            pytest.warns(remote.UnapprovedVersionWarning):
        client.load_model("churn_prediction", "1.1.0", stage=None, allow_unapproved=True)
    assert not (tmp_path / "cache").exists() or not list((tmp_path / "cache").iterdir())


def test_a_token_reads_only_the_models_it_was_granted(granted, tmp_path, other_data_scientist,
                                                     admin_user):
    """Team loans' service token, granted churn_prediction, cannot read team growth's model,
    through the client or any registry endpoint."""
    Team.objects.create(name="growth").members.add(other_data_scientist)
    services.model_create(name="growth_model", task_type="classification",
                          owner=other_data_scientist, actor=other_data_scientist,
                          team_name="growth")
    row = helpers.register_direct("growth_model", "1.0.0", actor=other_data_scientist)
    helpers.force_stage(row, "production")
    client, _adapter = _client(granted, tmp_path / "cache")
    with pytest.raises(remote.NotFound, match="no registered model named 'growth_model'"):
        client.load_model("growth_model")
    django = DjangoClient(headers={"Authorization": f"Bearer {granted}"})
    base = "/api/v1/models/growth_model/"
    for path in (base, base + "versions/", base + "versions/1.0.0/",
                 base + "versions/1.0.0/files/model.joblib"):
        assert django.get(path).status_code == 404, path
    names = [m["name"] for m in django.get("/api/v1/models/").json()["results"]]
    assert names == ["churn_prediction"]
    versions = django.get("/api/v1/versions/").json()["results"]
    assert {v["model"] for v in versions} == {"churn_prediction"}


def test_unknown_model_and_missing_settings_are_clear(granted, tmp_path, monkeypatch):
    client, _adapter = _client(granted, tmp_path / "cache")
    with pytest.raises(remote.NotFound):
        client.load_model("no_such_model")
    monkeypatch.delenv("MODEL_GOVERNANCE_URL", raising=False)
    with pytest.raises(remote.ModelLoadError, match="MODEL_GOVERNANCE_URL"):
        remote.load_model("churn_prediction", token=granted)


def test_the_cache_directory_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MODEL_GOVERNANCE_CACHE", str(tmp_path / "c"))
    assert remote.cache_directory() == tmp_path / "c"
    monkeypatch.delenv("MODEL_GOVERNANCE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert remote.cache_directory() == tmp_path / "xdg" / "model-governance"


def test_the_module_imports_without_django_or_the_project(tmp_path):
    """A service copies registry/client.py and imports it: no Django, no project."""
    copy = tmp_path / "client.py"
    copy.write_bytes(Path(remote.__file__).read_bytes())
    env = {k: v for k, v in os.environ.items()
           if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    env["PYTHONPATH"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", "import sys, client; "
         "print(sorted(m for m in sys.modules if m.split('.')[0] in "
         "('django', 'registry', 'core', 'config', 'rest_framework')))"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_no_warning_for_production(granted, tmp_path):
    client, _adapter = _client(granted, tmp_path / "cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.load_model("churn_prediction")
