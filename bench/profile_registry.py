"""Registry operations in process, through Django's test client: statements per request, p50
wall and CPU time, and (PROF=N) the N costliest calls of a cProfile run. Where the time goes,
without a server or a network in the way; CPU time holds up better than wall time when the
machine is busy.

    .venv/bin/python bench/profile_registry.py [get list500 create_model register tag transition]
    SQL=1 ...     prints one request's statements
    PROF=40 ...   prints the 40 costliest calls (cumulative)

A scratch SQLite database (or DATABASE_URL, dropped and recreated) holding 1,000 versions.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import remove, scratch_django  # noqa: E402


def main(names):
    scratch, _env = scratch_django("profile-registry")
    try:
        operations = _prepare()
        for name in names or list(operations):
            _measure(name, operations[name])
    finally:
        remove(scratch)


def _prepare():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client
    from rest_framework_simplejwt.tokens import RefreshToken

    from core import roles
    from registry import services
    from registry.models import ArtifactFile, ModelVersion
    from registry.versioning import parse_version

    roles.ensure_groups()
    user = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex)
    user.groups.add(Group.objects.get(name=roles.DATA_SCIENTIST))
    model = services.model_create(name="bench_many", task_type="classification", owner=user,
                                  actor=user)
    services.model_create(name="bench_uploads", task_type="classification", owner=user,
                          actor=user)
    rows = []
    for index in range(1000):
        parsed = parse_version(f"{index // 100}.{(index // 10) % 10}.{index % 10 + 10}")
        rows.append(ModelVersion(
            model=model, version=parsed.text, number=index + 1, major=parsed.major,
            minor=parsed.minor, patch=parsed.patch, prerelease="",
            prerelease_key=parsed.prerelease_key, framework="sklearn", created_by=user,
            algorithm="RandomForestClassifier", metrics={"accuracy": 0.8, "f1_score": 0.7},
            features=["a", "b", "c"]))
    versions = ModelVersion.objects.bulk_create(rows)
    ArtifactFile.objects.bulk_create([
        ArtifactFile(version=v, role="model", filename="model.joblib", position=0, size=1,
                     sha256="0" * 64) for v in versions])
    token = str(RefreshToken.for_user(user).access_token)
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {token}")
    counter = iter(range(1, 10**9))
    registered: list[str] = []
    to_move = [v.version for v in versions]

    def register():
        version = f"1.0.{next(counter)}"
        registered.append(version)
        return client.post("/api/v1/models/bench_uploads/versions/", {
            "version": version, "framework": "sklearn",
            "file": SimpleUploadedFile("model.joblib", os.urandom(1024))})

    return {
        "get": lambda: client.get("/api/v1/models/bench_many/versions/5.0.17/"),
        "list500": lambda: client.get("/api/v1/models/bench_many/versions/?page_size=500"),
        "create_model": lambda: client.post(
            "/api/v1/models/", json.dumps({"name": f"m{next(counter)}",
                                           "task_type": "classification"}),
            content_type="application/json"),
        "register": register,
        "tag": lambda: client.patch(
            f"/api/v1/models/bench_uploads/versions/{registered[0]}/",
            json.dumps({"tags": [f"t{next(counter) % 7}"]}), content_type="application/json"),
        "transition": lambda: client.post(
            f"/api/v1/models/bench_many/versions/{to_move.pop()}/transitions/",
            json.dumps({"to_stage": "staging"}), content_type="application/json"),
    }


def _measure(name, operation):
    from django.db import connection

    for _ in range(3):
        response = operation()
        assert response.status_code < 300, (name, response.status_code, response.content[:300])
    statements: list[str] = []

    def count(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        operation()
    repeat = 20 if name == "list500" else 100
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.thread_time()
        operation()
        cpu.append(time.thread_time() - started_cpu)
        wall.append(time.perf_counter() - started)
    wall.sort()
    cpu.sort()
    print(f"== {name}: {len(statements)} statements, p50 {wall[repeat // 2] * 1000:.2f} ms, "
          f"CPU p50 {cpu[repeat // 2] * 1000:.2f} ms")
    if os.environ.get("SQL"):
        for sql in statements:
            print("   ", sql[:220])
    if os.environ.get("PROF"):
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(repeat):
            operation()
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(
            int(os.environ["PROF"]))
        print(out.getvalue())


if __name__ == "__main__":
    main(sys.argv[1:])
