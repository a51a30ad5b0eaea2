"""Settings come from the environment; production settings pass `check --deploy`."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def manage(*args, **env):
    environment = {k: v for k, v in os.environ.items()
                   if k not in {"DJANGO_ENV", "SECRET_KEY", "JWT_SIGNING_KEY"}
                   and not k.startswith("AUDIT_CHAIN_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True,
        text=True, timeout=120,
    )


def production_env(**extra):
    return {
        "DJANGO_ENV": "production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "JWT_SIGNING_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "models.example.org",
        "AUDIT_CHAIN_KEY": secrets.token_urlsafe(48),
        "REDIS_URL": "redis://127.0.0.1:6379/15",
        **extra,
    }


def test_production_settings_pass_check_deploy_without_warnings():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_reads_the_audit_chain_key_from_a_file(tmp_path):
    key_file = tmp_path / "audit_chain_key"
    key_file.write_text(secrets.token_urlsafe(48) + "\n")
    env = production_env(AUDIT_CHAIN_KEY_FILE=str(key_file))
    env.pop("AUDIT_CHAIN_KEY")
    result = manage("check", "--deploy", "--fail-level", "WARNING", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    result = manage("shell", "-c", "from django.conf import settings; "
                    "print(settings.AUDIT_CHAIN_KEY)", **env)
    assert result.stdout.splitlines()[-1] == key_file.read_text().strip()


def test_development_generates_the_audit_chain_key_once_outside_the_database(tmp_path):
    show = ("from django.conf import settings; "
            "print(settings.AUDIT_CHAIN_KEY, settings.AUDIT_CHECKPOINT_FILE)")
    first = manage("shell", "-c", show, APP_VAR_DIR=str(tmp_path))
    second = manage("shell", "-c", show, APP_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    key, checkpoints = first.stdout.splitlines()[-1].split()
    assert second.stdout.splitlines()[-1].split() == [key, checkpoints]
    assert (tmp_path / "audit_chain_key").read_text() == key
    assert (tmp_path / "audit_chain_key").stat().st_mode & 0o777 == 0o600
    assert checkpoints == str(tmp_path / "audit-checkpoints.jsonl")
    assert sorted(path.name for path in tmp_path.iterdir() if "audit" in path.name) == [
        "audit_chain_key"]


def test_development_settings_are_flagged_by_check_deploy():
    """The check can fail: the same command on development settings reports warnings."""
    result = manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "SECURE_HSTS_SECONDS" in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_ENV": "staging"}, "DJANGO_ENV must be"),
        ({**production_env(), "SECRET_KEY": "short"}, "SECRET_KEY must be"),
        ({**production_env(), "DEBUG": "true"}, "DEBUG must be off"),
        ({**production_env(), "JWT_SIGNING_KEY": "short"}, "JWT_SIGNING_KEY must be"),
        ({**production_env(), "LOGIN_THROTTLE_PER_ADDRESS": "0"}, "LOGIN_THROTTLE_* settings"),
        ({**production_env(), "AUDIT_CHAIN_KEY": "short"}, "AUDIT_CHAIN_KEY must be at least 32"),
        ({**production_env(SECRET_KEY="s" * 60), "AUDIT_CHAIN_KEY": "s" * 60},
         "AUDIT_CHAIN_KEY must differ from SECRET_KEY"),
        ({**production_env(), "AUDIT_CHAIN_KEY_FILE": "/nonexistent/key"}, "not both"),
        ({**production_env(AUDIT_CHAIN_KEY=""), "AUDIT_CHAIN_KEY_FILE": "/nonexistent/key"},
         "AUDIT_CHAIN_KEY_FILE: [Errno 2]"),
        ({**production_env(), "DB_CONN_MAX_AGE": "soon",
          "DATABASE_URL": "postgres://u@localhost/db"}, "invalid literal"),
        ({"WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32,10.0.0.0/33"}, "WEBHOOK_ALLOWED_NETWORKS"),
    ],
)
def test_a_bad_setting_fails_loudly(env, message):
    result = manage("check", **env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    env = production_env()
    env.pop("SECRET_KEY")
    result = manage("check", **env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_a_jwt_signing_key():
    env = production_env()
    env.pop("JWT_SIGNING_KEY")
    result = manage("check", **env)
    assert result.returncode != 0
    assert "Set the JWT_SIGNING_KEY environment variable" in result.stderr


def test_production_refuses_the_secret_key_as_the_jwt_signing_key():
    env = production_env()
    result = manage("check", **{**env, "JWT_SIGNING_KEY": env["SECRET_KEY"]})
    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must be at least 50 random characters, and not the SECRET_KEY" in (
        result.stderr)


def test_development_makes_a_private_jwt_signing_key_once(tmp_path):
    show = ("from django.conf import settings; "
            "print(settings.SIMPLE_JWT['SIGNING_KEY'] != settings.SECRET_KEY)")
    first = manage("shell", "-c", show, APP_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[-1] == "True"
    key_file = tmp_path / "jwt_signing_key"
    key = key_file.read_text()
    assert len(key) >= 50 and key != (tmp_path / "secret_key").read_text()
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = manage("shell", "-c", show, APP_VAR_DIR=str(tmp_path))
    assert again.returncode == 0, again.stderr
    assert key_file.read_text() == key
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
def test_production_refuses_to_start_without_an_audit_chain_key():
    env = production_env()
    env.pop("AUDIT_CHAIN_KEY")
    result = manage("check", **env)
    assert result.returncode != 0
    assert "AUDIT_CHAIN_KEY (or AUDIT_CHAIN_KEY_FILE) is required" in result.stderr


def test_the_store_root_and_upload_limit_come_from_the_environment(tmp_path):
    result = manage(
        "shell", "-c",
        "from django.conf import settings; print(settings.MODEL_STORE_ROOT, "
        "settings.MODEL_MAX_UPLOAD_BYTES, settings.CELERY_BROKER_URL)",
        MODEL_STORE_ROOT=str(tmp_path / "store"), MODEL_MAX_UPLOAD_BYTES="1234",
        REDIS_URL="",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].split() == [
        str(tmp_path / "store"), "1234", "filesystem://localhost//"
    ]


def test_production_refuses_to_start_without_redis():
    result = manage("check", **production_env(REDIS_URL=""))
    assert result.returncode != 0
    assert "REDIS_URL is required when DJANGO_ENV=production" in result.stderr
