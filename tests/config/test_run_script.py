"""bin/run lets the demo's loopback webhook receiver in, in development only, and never
overrides what the environment or .env says."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(tmp_path, dotenv=None, **env):
    """bin/run, copied beside `dotenv` as .env, with a Python that only reports what the
    gunicorn it was asked to start would see."""
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / "bin" / "run", tmp_path / "bin" / "run")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$2 sees ${WEBHOOK_ALLOWED_NETWORKS-unset}"\n')
    python.chmod(0o755)
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DJANGO_ENV", "WEBHOOK_ALLOWED_NETWORKS"}}
    environment.update(VENV=str(tmp_path / "venv"), APP_VAR_DIR=str(tmp_path / "var"), **env)
    result = subprocess.run(["bash", str(tmp_path / "bin" / "run")], env=environment,
                            capture_output=True, text=True, timeout=60)
    (said,) = [line for line in result.stdout.splitlines() if line.startswith("gunicorn sees")] or [result.stderr]
    return said.removeprefix("gunicorn sees ")


@pytest.mark.parametrize(("dotenv", "env", "allowed"), [
    (None, {}, "127.0.0.1/32"),
    ("DJANGO_ENV=development\n", {}, "127.0.0.1/32"),
    (None, {"DJANGO_ENV": "production"}, "unset"),
    ("# deployed\nDJANGO_ENV=production\n", {}, "unset"),
    (None, {"WEBHOOK_ALLOWED_NETWORKS": ""}, ""),
    (None, {"WEBHOOK_ALLOWED_NETWORKS": "10.0.0.0/8"}, "10.0.0.0/8"),
    ("WEBHOOK_ALLOWED_NETWORKS=\n", {}, "unset"),  # .env's empty value is the settings' own
])
def test_bin_run_allows_the_local_receiver_in_development_only(tmp_path, dotenv, env, allowed):
    assert run_script(tmp_path, dotenv, **env) == allowed
