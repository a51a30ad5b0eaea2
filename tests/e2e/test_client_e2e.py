"""A service outside the project loads a model with registry/client.py: a process with no
Django, no settings and no project on its path, against the app under gunicorn."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import joblib
import numpy as np
import pytest

from core import roles
from predictions import services as predictions
from registry import services
from tests import helpers
from tests.conftest import _person
from tests.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ROWS = [[0.5, -1.0, 2.0], [1.5, 0.3, -0.2], [0.0, 0.0, 0.0]]
SCRIPT = textwrap.dedent("""
    import json, sys
    from client import load_model

    model = load_model("churn_prediction")          # url, token, cache: from the environment
    rows = json.loads(sys.argv[1])
    print(json.dumps({"version": model.version, "stage": model.stage,
                      "classes": [int(c) for c in model.classes_],
                      "probabilities": model.predict_proba(rows).tolist(),
                      "django": any(m.split(".")[0] == "django" for m in sys.modules)}))
""")


def test_a_service_loads_and_predicts_with_only_the_client_file(
    live_app, data_scientist, churn_model, admin_user, django_user_model, tmp_path
):
    released = helpers.register_direct(
        "churn_prediction", "1.0.0", actor=data_scientist,
        preprocessors=[("scaler.pkl", helpers.sklearn_bytes("scaler"))])
    helpers.force_stage(released, "production")
    robot = _person(django_user_model, "scoring-svc", roles.SERVICE)
    services.model_update(model=churn_model, actor=admin_user, readers=[robot])
    _row, token = predictions.api_token_create(user=robot, name="scoring", actor=admin_user)

    service = tmp_path / "service"
    service.mkdir()
    (service / "client.py").write_bytes((ROOT / "registry" / "client.py").read_bytes())
    (service / "score.py").write_text(SCRIPT)
    cache = tmp_path / "cache"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
           "PYTHONPATH": str(service), "MODEL_GOVERNANCE_URL": live_app,
           "MODEL_GOVERNANCE_TOKEN": token, "MODEL_GOVERNANCE_CACHE": str(cache)}

    def score():
        result = subprocess.run([sys.executable, "score.py", json.dumps(ROWS)], cwd=service,
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    answer = score()
    scaler = joblib.load(io.BytesIO(helpers.sklearn_bytes("scaler")))
    model = joblib.load(io.BytesIO(helpers.sklearn_bytes()))
    assert (answer["version"], answer["stage"], answer["django"]) == ("1.0.0", "production",
                                                                      False)
    assert answer["classes"] == model.classes_.tolist()
    np.testing.assert_allclose(answer["probabilities"],
                               model.predict_proba(scaler.transform(np.array(ROWS))))
    cached = {p.name: p.stat().st_mtime_ns for p in Path(cache).iterdir()}
    assert set(cached) == {helpers.sha256(helpers.sklearn_bytes()),
                           helpers.sha256(helpers.sklearn_bytes("scaler"))}

    assert score() == answer  # from the cache: its files are not written again
    assert {p.name: p.stat().st_mtime_ns for p in Path(cache).iterdir()} == cached
