"""Artifacts and snapshots used across the tests."""

from __future__ import annotations

import functools
import hashlib
import io
import json
import pickle
import warnings
from pathlib import Path

import joblib
import numpy as np
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

PASSWORD = "a-long-test-password-1"
FEATURES = ["tenure", "visits", "late_returns"]


@functools.cache
def sklearn_bytes(kind: str = "logreg", seed: int = 0) -> bytes:
    """A small fitted scikit-learn model, serialised with joblib."""
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, len(FEATURES)))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    if kind == "logreg":
        model = LogisticRegression().fit(X, y)
    elif kind == "linreg":
        model = LinearRegression().fit(X, X[:, 0] * 2.0)
    elif kind == "scaler":
        model = StandardScaler().fit(X * 10 + 5)
    else:
        raise ValueError(kind)
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def metadata(**overrides) -> dict:
    document = {
        "description": "Churn model",
        "algorithm": "LogisticRegression",
        "training_dataset": "data/members_2026_10.parquet",
        "features": FEATURES,
        "target": "churned",
        "hyperparameters": {"C": 1.0},
        "metrics": {"accuracy": 0.82, "f1_score": 0.79},
        "tags": ["churn", "members"],
        "changelog": ["First version"],
        "python_version": "3.11.7",
        "framework_version": "1.9.1",
    }
    document.update(overrides)
    return document


def upload(name: str, data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def registration_form(
    version: str = "1.0.0",
    *,
    framework: str = "sklearn",
    files=None,
    preprocessors=None,
    meta=None,
    **fields,
) -> dict:
    form = {
        "version": version,
        "framework": framework,
        "metadata": json.dumps(metadata() if meta is None else meta),
        "file": files if files is not None else [upload("model.joblib", sklearn_bytes())],
        **fields,
    }
    if preprocessors:
        form["preprocessor"] = preprocessors
    return form


def register(client, model_name: str, version: str = "1.0.0", *, headers=None, **kwargs):
    return client.post(
        f"/api/v1/models/{model_name}/versions/",
        registration_form(version, **kwargs),
        format="multipart",
        **(headers or {}),
    )


def create_model(*, owner, name: str = "churn_prediction", task_type: str = "classification"):
    from registry import services

    return services.model_create(name=name, task_type=task_type, owner=owner, actor=owner)


def register_direct(model_name: str, version: str, *, actor, data: bytes | None = None,
                    framework: str = "sklearn", filename: str = "model.joblib", meta=None,
                    preprocessors: list[tuple[str, bytes]] = ()):
    """Register through the service, as the demo seeder does (no HTTP)."""
    from registry import services, store

    incoming = [store.ingest_stream(io.BytesIO(data or sklearn_bytes()), name=filename,
                                    role="model")]
    for name, payload in preprocessors:
        incoming.append(store.ingest_stream(io.BytesIO(payload), name=name, role="preprocessor"))
    return services.version_register(
        model_name=model_name, version=version, framework=framework,
        metadata=metadata() if meta is None else meta, files=incoming, actor=actor,
    )


def store_snapshot() -> dict[str, int | str]:
    """Every file (relative path -> size) and folder (-> "dir") under the store root, the
    catalogue included: a refusal must not leave even an empty folder behind."""
    root = Path(settings.MODEL_STORE_ROOT)
    return {
        str(path.relative_to(root)): "dir" if path.is_dir() else path.stat().st_size
        for path in sorted(root.rglob("*"))
        if not path.name.startswith(".catalogue.lock")
    }


# Every table of these apps is watched, m2m through tables included: a refusal must not leave
# an alert, a delivery, a prediction log, a team membership or a role behind.
WATCHED_APPS = ("core", "registry", "governance", "predictions", "monitoring", "auth")


def row_counts(allow_actions: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """Every row of every watched table (db_table -> rows in primary-key order), audit events
    of `allow_actions` left out."""
    from django.apps import apps

    from core.models import AuditChainHead, AuditEvent

    tables = {}
    for label in WATCHED_APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            rows = model._base_manager.order_by("pk")
            if model is AuditEvent:
                rows = rows.exclude(action__in=allow_actions)
            elif model is AuditChainHead:
                continue  # it moves with each allowed event; the events themselves are compared
            tables[model._meta.db_table] = list(rows.values_list())
    return tables


def _differences(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> list[str]:
    found = []
    for table in sorted(before.keys() | after.keys()):
        old, new = before.get(table, []), after.get(table, [])
        if old != new:
            gone = [repr(row)[:200] for row in old if row not in new][:3]
            added = [repr(row)[:200] for row in new if row not in old][:3]
            found.append(f"{table}: {len(old)} -> {len(new)} rows; was {gone}; now {added}")
    return found


class Unchanged:
    """`with Unchanged():` asserts that no row and no file was added, changed or removed, also
    when the block raises (a refused service call inside `pytest.raises`).

    `allow_actions` names audit events the refusal itself may write (a refused governance
    action is audited as `permission.denied`).
    """

    def __init__(self, allow_actions: tuple[str, ...] = ("permission.denied",)):
        self.allow_actions = allow_actions

    def __enter__(self):
        self.rows = row_counts(self.allow_actions)
        self.files = store_snapshot()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None or (issubclass(exc_type, Exception)
                                and not issubclass(exc_type, AssertionError)):
            changed_rows = _differences(self.rows, row_counts(self.allow_actions))
            assert not changed_rows, "rows changed:\n" + "\n".join(changed_rows)
            after = store_snapshot()
            changed = {k: (self.files.get(k), after.get(k)) for k in self.files.keys() | after
                       if self.files.get(k) != after.get(k)}
            assert not changed, f"files changed (before, after): {changed}"
        return False


def raw_multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]):
    """Encode a multipart body by hand, file names exactly as given.

    Django's test client strips a file name to its basename; an attacker's client does not.
    """
    boundary = "----modelgovernancetestboundary"
    lines: list[bytes] = []
    for name, value in fields.items():
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{name}"'.encode(),
            b"",
            value.encode(),
        ]
    for field, filename, data in files:
        lines += [
            f"--{boundary}".encode(),
            f'Content-Disposition: form-data; name="{field}"; filename="{filename}"'.encode(),
            b"Content-Type: application/octet-stream",
            b"",
            data,
        ]
    lines += [f"--{boundary}--".encode(), b""]
    return b"\r\n".join(lines), f"multipart/form-data; boundary={boundary}"


def register_raw(client, model_name: str, files: list[tuple[str, str, bytes]],
                 version: str = "1.0.0", **headers):
    body, content_type = raw_multipart(
        {"version": version, "framework": "sklearn", "metadata": json.dumps(metadata())}, files
    )
    return client.post(
        f"/api/v1/models/{model_name}/versions/", body, content_type=content_type, **headers
    )


@functools.cache
def torchscript_bytes() -> bytes:
    """A TorchScript module: y = 2 * sum(x) + 1 over the last dimension."""
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, x):
            return 2 * x.sum(dim=1, keepdim=True) + 1

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript, deprecated in 2.13
        torch.jit.save(torch.jit.script(Doubler()), buffer)
    return buffer.getvalue()


@functools.cache
def onnx_bytes() -> bytes:
    """An ONNX graph: y = x @ [[1], [2], [3]] + 0.5."""
    import onnx
    from onnx import TensorProto, helper

    weights = helper.make_tensor("W", TensorProto.FLOAT, [3, 1], [1.0, 2.0, 3.0])
    bias = helper.make_tensor("B", TensorProto.FLOAT, [1], [0.5])
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "B"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def audit_tamper(*statements: tuple[str, list]) -> None:
    """Run (sql, params) on the append-only audit table around its triggers, as the database's
    owner can: the tests of what verification catches, and teardown."""
    from django.db import connection

    from core import db_triggers as sql

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE governance_auditevent DISABLE TRIGGER USER")
            for statement, params in statements:
                cursor.execute(statement, params)
            cursor.execute("ALTER TABLE governance_auditevent ENABLE TRIGGER USER")
        else:
            for statement in sql.SQLITE_DOWN:
                cursor.execute(statement)
            for statement, params in statements:
                cursor.execute(statement, params)
            for statement in sql.SQLITE_UP:
                cursor.execute(statement)


def purge_audit_events() -> None:
    """Empty the append-only audit table around its triggers (test teardown only)."""
    audit_tamper(("DELETE FROM governance_auditevent", []))


PATHS = {"staging": ["staging"], "production": ["staging", "production"], "archived": ["archived"]}


def governance_admin():
    """An admin account for test set-up (forced moves need the admin role)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from core import roles

    roles.ensure_groups()
    user, created = get_user_model().objects.get_or_create(
        username="setup-admin", defaults={"is_staff": True})
    if created:
        user.groups.add(Group.objects.get(name=roles.ADMIN))
    return user


def mark_validated(version):
    """Record a passed validation run for a version that has none (test set-up: production
    takes a passed validation, even by force, and tests that are not about validation skip
    the sandbox's second or so)."""
    from governance.models import RunStatus, ValidationRun
    from governance.selectors import latest_validation

    latest = latest_validation(version)
    if latest is None or latest.status != RunStatus.PASSED:
        ValidationRun.objects.create(version=version, trigger="manual", status=RunStatus.PASSED,
                                     summary="test set-up")


def force_stage(version, stage: str):
    """Put a version in a stage through governance's forced moves (test set-up)."""
    from governance import services as governance

    path = PATHS[stage]
    if version.stage in path:  # part of the way is done already
        path = path[path.index(version.stage) + 1:]
    if "production" in path:
        mark_validated(version)
    for step in path:
        outcome = governance.version_force_stage(
            version=version, to_stage=step, actor=governance_admin(), reason="test set-up")
        assert outcome.deployment.status == "completed", outcome.deployment.error
    version.refresh_from_db()
    return version


class HidingModel:
    """Unpickles to a real logistic regression, and writes `marker` where Django is loaded."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        code = (f"(__import__('sys').modules.get('django') is not None"
                f" and open({self.marker!r}, 'w').write('ran outside the sandbox') and None)"
                f" or __import__('joblib').load(__import__('io').BytesIO("
                f"{sklearn_bytes()!r}))")
        return (eval, (code,))


def hiding_bytes(marker) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(HidingModel(str(marker)), buffer)
    return buffer.getvalue()


class Hostile:
    """A pickle that runs `code` when it is loaded."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def hostile_bytes(code: str) -> bytes:
    return pickle.dumps(Hostile(code))


class AppAdapter:
    """A `requests` transport adapter that sends each request to the app in this process
    (Django's test client, in the test's transaction), for clients that speak HTTP through
    requests (registry.client, schemathesis). `tamper(path, body)` may change a response body
    on its way, as a compromised proxy would; `paths` lists the paths asked for."""

    def __new__(cls, *args, **kwargs):
        import requests.adapters

        class _Adapter(requests.adapters.BaseAdapter):
            def __init__(self, tamper=None):
                from django.test import Client

                super().__init__()
                self.django, self.tamper, self.paths = Client(), tamper, []

            def send(self, request, **kwargs):
                from urllib.parse import urlsplit

                import requests
                import urllib3

                parts = urlsplit(request.url)
                self.paths.append(parts.path)
                headers = {k: v for k, v in request.headers.items()
                           if k.lower() not in ("content-type", "content-length", "host")}
                body = request.body or b""
                answer = self.django.generic(
                    request.method, parts.path + (f"?{parts.query}" if parts.query else ""),
                    data=body.encode() if isinstance(body, str) else body,
                    content_type=request.headers.get("Content-Type",
                                                     "application/octet-stream"),
                    headers=headers,
                )
                content = (b"".join(answer.streaming_content) if answer.streaming
                           else answer.content)
                answer_headers = dict(answer.items())
                if self.tamper is not None:
                    content = self.tamper(parts.path, content)
                    answer_headers["Content-Length"] = str(len(content))
                response = requests.Response()
                response.status_code, response.url = answer.status_code, request.url
                response.request, response.reason = request, answer.reason_phrase
                response.headers.update(answer_headers)
                response.raw = urllib3.HTTPResponse(
                    body=io.BytesIO(content), headers=answer_headers,
                    status=answer.status_code, reason=answer.reason_phrase,
                    preload_content=False, decode_content=False)
                return response

            def close(self):
                pass

        return _Adapter(*args, **kwargs)


def app_session(base_url: str, adapter=None):
    """A requests.Session whose requests to `base_url` go to the app in this process."""
    import requests

    session = requests.Session()
    adapter = adapter or AppAdapter()
    session.mount(base_url, adapter)
    session.app_adapter = adapter
    return session


class QueryCount:
    """The statements run inside the block, counted as they execute. (CaptureQueriesContext
    counts nothing across a test client's request: request_started empties its log.)"""

    def __init__(self):
        self.statements: list[str] = []

    def __enter__(self):
        from django.db import connection

        def count(execute, sql, params, many, context):
            self.statements.append(sql)
            return execute(sql, params, many, context)

        self._wrapper = connection.execute_wrapper(count)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        self._wrapper.__exit__(*exc)

    def __len__(self) -> int:
        return len(self.statements)
