"""bin/run lets the demo's loopback webhook receiver in, in development only, and never
overrides what the environment or .env says."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_script(tmp_path, dotenv=None, what="sees", **env):
    """bin/run, copied beside `dotenv` as .env, with a Python that only reports what the
    gunicorn it was asked to start would see."""
    (tmp_path / "bin").mkdir()
    shutil.copy(ROOT / "bin" / "run", tmp_path / "bin" / "run")
    if dotenv is not None:
        (tmp_path / ".env").write_text(dotenv)
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/sh\necho "$2 sees ${WEBHOOK_ALLOWED_NETWORKS-unset}"\n'
                      'echo "$2 links ${APP_BASE_URL-unset}"\n')
    python.chmod(0o755)
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DJANGO_ENV", "WEBHOOK_ALLOWED_NETWORKS", "APP_BASE_URL"}}
    environment.setdefault("PORT", str(free_port()))
    environment.update(VENV=str(tmp_path / "venv"), APP_VAR_DIR=str(tmp_path / "var"), **env)
    result = subprocess.run(["bash", str(tmp_path / "bin" / "run")], env=environment,
                            capture_output=True, text=True, timeout=60)
    (said,) = [line for line in result.stdout.splitlines()
               if line.startswith(f"gunicorn {what} ")] or [result.stderr.strip()]
    return said.removeprefix(f"gunicorn {what} ")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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


@pytest.mark.parametrize(("dotenv", "env", "links"), [
    (None, {"PORT": "8123"}, "http://127.0.0.1:8123"),
    (None, {"HOST": "127.0.0.2", "PORT": "8124"}, "http://127.0.0.2:8124"),
    (None, {"APP_BASE_URL": "https://models.example.org"}, "https://models.example.org"),
    ("APP_BASE_URL=https://models.example.org\n", {}, "unset"),  # the settings read .env
])
def test_bin_run_points_links_at_its_own_address_unless_told(tmp_path, dotenv, env, links):
    assert run_script(tmp_path, dotenv, what="links", **env) == links


def test_bin_run_names_a_taken_port_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        said = run_script(tmp_path, PORT=str(port))
    assert said == (f"Port {port} on 127.0.0.1 is already in use (another make run?): stop it, "
                    f"or choose another port, e.g. PORT=8001 make run")
