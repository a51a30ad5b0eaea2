"""A checkout anywhere works: the project and its virtualenv under /tmp validate a model.

The sandbox builds its own root file system from the interpreter's import folders, so a
project (and a virtualenv) under /tmp, which the sandbox gives a private, empty /tmp of its
own, must still find numpy and scikit-learn.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from tests.processes import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

SCRIPT = """
from django.contrib.auth import get_user_model
from governance import services
from registry import services as registry
from tests import helpers

user = get_user_model().objects.create_user("dana", password=helpers.PASSWORD)
registry.model_create(name="churn_prediction", task_type="classification", owner=user,
                      actor=user)
version = helpers.register_direct("churn_prediction", "1.0.0", actor=user)
run = services.validation_request_now(version)
load = run.checks.get(name="load")
import numpy, sys
assert numpy.__file__.startswith("/tmp/"), numpy.__file__
print("RESULT", run.status, load.measured.get("isolation", {}).get("level"), load.detail)
"""


@pytest.fixture
def checkout_in_tmp():
    folder = Path(tempfile.mkdtemp(prefix="mgov-checkout-", dir="/tmp"))
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, folder / name)
    # A virtualenv under /tmp too, holding the installed packages (hard links: a copy of
    # the files without copying their bytes; a real copy on another file system).
    venv = folder / ".venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python3*/site-packages"))
    site.rmdir()
    installed = sysconfig.get_paths()["purelib"]
    if subprocess.run(["cp", "-al", installed, str(site)]).returncode != 0:
        shutil.rmtree(site, ignore_errors=True)
        shutil.copytree(installed, site, symlinks=True)
    yield folder, venv / "bin" / "python"
    shutil.rmtree(folder, ignore_errors=True)


def test_a_checkout_and_virtualenv_under_tmp_validate_a_model(checkout_in_tmp):
    folder, python = checkout_in_tmp
    env = {key: value for key, value in os.environ.items()
           if key not in {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MODEL_STORE_ROOT",
                          "APP_VAR_DIR", "VALIDATION_SANDBOX_DIR", "DJANGO_SETTINGS_MODULE",
                          "CELERY_FILESYSTEM_BROKER_DIR"}}
    env.update(CELERY_TASK_ALWAYS_EAGER="true", PYTHONDONTWRITEBYTECODE="1")
    subprocess.run([str(python), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=folder,
                   env=env, check=True, timeout=600)
    result = subprocess.run([str(python), "manage.py", "shell", "-c", SCRIPT], cwd=folder,
                            env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, result.stdout + result.stderr
    _, status, level, detail = lines[-1].split(" ", 3)
    assert status == "passed", detail
    if os.geteuid() == 0:
        assert level == "full", detail
