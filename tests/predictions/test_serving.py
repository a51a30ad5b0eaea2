"""The model cache, canary and shadow routing."""

from __future__ import annotations

import json
import threading
from collections import Counter

import pytest
from django.db import connection

from governance import services as governance
from predictions import logs, serving
from predictions import services as predictions
from predictions.models import PredictionLog
from tests import helpers

URL = "/api/v1/models/churn_prediction/predict/"


def _post(client, rows=None, **headers):
    body = json.dumps({"inputs": rows or [[1.0, 2.0, 3.0]]})
    return client.post(URL, body, content_type="application/json", **headers)


@pytest.mark.django_db(transaction=True)  # the threads read committed rows
def test_concurrent_first_requests_load_the_model_once(served):
    version = served()
    route = serving.routes.route("churn_prediction")
    barrier = threading.Barrier(6)
    loaded = []

    def first_request():
        barrier.wait()
        loaded.append(serving.models.get(route.production))

    def in_thread():
        try:
            first_request()
        finally:
            connection.close()

    threads = [threading.Thread(target=in_thread) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(model) for model in loaded}) == 1  # one load, shared by every thread
    assert version.pk in serving.models


def test_the_cache_evicts_the_least_recently_used_version_over_its_budget(served, settings):
    served("1.0.0", stage="staging")
    served("1.1.0", stage="staging")
    settings.PREDICTION_CACHE_MAX_MB = 0  # below one model: keeps only the newest
    first = serving.routes.version("churn_prediction", "1.0.0")[1]
    second = serving.routes.version("churn_prediction", "1.1.0")[1]
    serving.models.get(first)
    serving.models.get(second)
    assert second.version_id in serving.models
    assert first.version_id not in serving.models


@pytest.fixture
def canary(served, approver, data_scientist):
    served("1.0.0")
    candidate = served("1.1.0", stage="staging", data=helpers.sklearn_bytes(seed=1))
    return governance.rollout_start(version=candidate, mode="canary", actor=approver,
                                    steps=[50, 100])


def test_a_canary_answers_its_share_sticky_per_routing_key(service, canary, approver):
    seen = {}
    for key in range(40):
        answers = {(_post(service, HTTP_X_ROUTING_KEY=f"user-{key}").json()["version"])
                   for _ in range(3)}
        assert len(answers) == 1  # the same key always reaches the same version
        seen[key] = answers.pop()
    share = Counter(seen.values())
    assert share["1.1.0"] > 5 and share["1.0.0"] > 5  # about half each
    routed = {r.json()["routed_to"] for r in [_post(service, HTTP_X_ROUTING_KEY="user-1")]}
    assert routed <= {"canary", "production"}

    governance.rollout_advance(model=canary.model, actor=approver)
    assert {_post(service, HTTP_X_ROUTING_KEY=f"k{i}").json()["version"]
            for i in range(10)} == {"1.1.0"}
    governance.rollout_abort(model=canary.model, actor=approver, reason="enough")
    assert _post(service).json()["version"] == "1.0.0"


@pytest.mark.django_db(transaction=True)  # the shadow runs on its own thread
def test_a_shadow_scores_every_request_and_is_only_logged(service, served, approver):
    served("1.0.0")
    candidate = served("1.1.0", stage="staging", data=helpers.sklearn_bytes(seed=1))
    governance.rollout_start(version=candidate, mode="shadow", actor=approver)
    response = _post(service, rows=[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    body = response.json()
    assert (body["version"], body["routed_to"]) == ("1.0.0", "production")
    predictions.wait_for_shadows()
    logs.flush()
    entries = {log.route: log for log in PredictionLog.objects.filter(
        request_id=body["request_id"])}
    assert set(entries) == {"production", "shadow"}
    assert entries["shadow"].version.version == "1.1.0"
    assert entries["shadow"].inputs == entries["production"].inputs


def test_promoting_the_candidate_ends_its_rollout(canary, admin_user, service):
    helpers.force_stage(canary.candidate, "production")
    canary.refresh_from_db()
    assert canary.status == "finished"
    assert {_post(service, HTTP_X_ROUTING_KEY=f"k{i}").json()["routed_to"]
            for i in range(5)} == {"production"}


def test_rollouts_need_the_right_role_and_a_staged_validated_candidate(api, served, approver,
                                                                       data_scientist):
    served("1.0.0")
    experiment = helpers.register_direct("churn_prediction", "1.1.0", actor=data_scientist)
    url = "/api/v1/models/churn_prediction/rollout/"
    for mode in ("canary", "shadow"):  # either loads the candidate into the web processes
        with helpers.Unchanged():
            denied = api(data_scientist).post(url, {"version": "1.1.0", "mode": mode},
                                              format="json")
        assert denied.status_code == 403, mode
    wrong_stage = api(approver).post(url, {"version": "1.1.0", "mode": "shadow"},
                                     format="json")
    assert wrong_stage.status_code == 409
    helpers.force_stage(experiment, "staging")
    not_validated = api(approver).post(url, {"version": "1.1.0", "mode": "shadow"},
                                       format="json")
    assert not_validated.status_code == 409 and not_validated.json()["code"] == "not_validated"
    bad_steps = api(approver).post(url, {"version": "1.1.0", "mode": "shadow",
                                         "steps": [50, 10]}, format="json")
    assert bad_steps.status_code in (400, 409)


def test_an_approver_cannot_shadow_a_version_of_their_own(api, served, approver):
    served("1.0.0")
    own = served("1.1.0", stage="staging")
    type(own).objects.filter(pk=own.pk).update(created_by=approver)
    with helpers.Unchanged():
        response = api(approver).post("/api/v1/models/churn_prediction/rollout/",
                                      {"version": "1.1.0", "mode": "shadow"}, format="json")
    assert response.status_code == 403
    assert "Four eyes" in response.json()["detail"]


def test_the_rollout_api_starts_advances_and_aborts(api, approver, served):
    served("1.0.0")
    served("1.1.0", stage="staging")
    client = api(approver)
    base = "/api/v1/models/churn_prediction/rollout/"
    started = client.post(base, {"version": "1.1.0", "mode": "canary", "steps": [10, 50]},
                          format="json")
    assert started.status_code == 201, started.json()
    assert started.json()["percent"] == 10
    assert client.get(base).json()["candidate"] == "1.1.0"
    assert client.post(base + "advance", {}, format="json").json()["percent"] == 50
    last = client.post(base + "advance", {}, format="json")
    assert last.status_code == 409 and last.json()["code"] == "last_step"
    assert client.post(base + "advance", {"percent": 75}, format="json").json()["percent"] == 75
    aborted = client.post(base + "abort", {"reason": "errors"}, format="json")
    assert aborted.json()["status"] == "aborted"
    assert client.get(base).status_code == 404


def test_the_author_of_a_candidate_cannot_give_it_real_traffic(api, served, data_scientist,
                                                                approver):
    from django.contrib.auth.models import Group

    from core.models import AuditEvent
    from governance.models import Rollout

    served("1.0.0")
    served("1.1.0", stage="staging", data=helpers.sklearn_bytes(seed=1))  # dana's
    data_scientist.groups.add(Group.objects.get(name="approver"))  # dana is an approver too
    url = "/api/v1/models/churn_prediction/rollout/"
    denied = api(data_scientist).post(url, {"version": "1.1.0", "mode": "canary"},
                                      format="json")
    assert denied.status_code == 403
    assert "Four eyes" in denied.json()["detail"]
    assert not Rollout.objects.exists()
    assert AuditEvent.objects.filter(action="permission.denied", actor_name="dana").exists()
    # Someone else starts it; dana still may not turn it up.
    assert api(approver).post(url, {"version": "1.1.0", "mode": "canary"},
                              format="json").status_code == 201
    raised = api(data_scientist).post(url + "advance", {"percent": 100}, format="json")
    assert raised.status_code == 403
    assert Rollout.objects.get().percent == 10


def test_after_a_share_set_by_hand_the_next_step_is_the_first_above_it(api, approver, served):
    served("1.0.0")
    served("1.1.0", stage="staging")
    client = api(approver)
    base = "/api/v1/models/churn_prediction/rollout/"
    client.post(base, {"version": "1.1.0", "mode": "canary", "steps": [10, 25, 50, 100]},
                format="json")
    assert client.post(base + "advance", {"percent": 30}, format="json").json()["percent"] == 30
    assert client.post(base + "advance", {}, format="json").json()["percent"] == 50


# --- loaded before gunicorn forks its workers (config/gunicorn.py) ------------------------------


@pytest.fixture
def onnx_production(data_scientist):
    helpers.create_model(owner=data_scientist, name="linear_onnx", task_type="regression")
    version = helpers.register_direct("linear_onnx", "1.0.0", actor=data_scientist,
                                      data=helpers.onnx_bytes(), framework="onnx",
                                      filename="model.onnx")
    helpers.mark_validated(version)
    return helpers.force_stage(version, "production")


def test_before_a_fork_only_production_scikit_learn_models_load_and_none_is_called(
    served, onnx_production
):
    import os

    production = served("1.0.0")
    staged = served("1.1.0", stage="staging", data=helpers.sklearn_bytes(seed=1))
    loaded = serving.preload(before_fork=True)
    assert loaded == ["churn_prediction 1.0.0"]
    assert production.pk in serving.models
    assert staged.pk not in serving.models  # not approved for production: never loaded here
    assert onnx_production.pk not in serving.models  # its thread pool would not cross a fork
    assert (os.getpid(), production.pk) not in serving.models.warmed  # no call, no thread pool
    # In the worker: what could not cross the fork is loaded, and everything is warmed.
    assert serving.preload() == ["linear_onnx 1.0.0"]
    assert {(os.getpid(), production.pk), (os.getpid(), onnx_production.pk)} <= serving.models.warmed


def test_a_forked_worker_answers_with_the_model_object_loaded_before_the_fork(served):
    import os

    version = served("1.0.0")
    serving.preload(before_fork=True)
    target = serving.routes.route("churn_prediction").production
    before = serving.models.get(target)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # the "worker": no database here, only what the fork copied
        try:
            same = serving.models.get(target) is before
            inherited = serving.models.inherited() == [version.pk]
            os.write(write, f"{same} {inherited}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode()
    os.waitpid(child, 0)
    assert answer == "True True"
    assert serving.models.inherited() == []  # this process loaded it itself
