"""Fixtures shared by every test: a private store per test, the named people, API clients.

The people (style.md, habit 11): a data scientist who registers, a second data scientist, an
approver, a viewer, an admin, and an outsider who holds no role and must see nothing.
"""

from __future__ import annotations

import importlib.abc
import sys
import uuid

import pytest
from django.contrib.auth.models import Group
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core import roles
from registry import store
from tests import helpers

# Property tests must not depend on how busy the machine is: no deadline, no "too slow"
# health checks (a loaded 2-core machine trips them), and the same examples on every run.
hypothesis_settings.register_profile(
    "project", deadline=None, derandomize=True, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much],
)
hypothesis_settings.load_profile("project")


def pytest_runtest_setup(item):
    from django.conf import settings

    if item.get_closest_marker("postgres") and \
            settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL (SQLite has no row locks to race): run with "
                    "DATABASE_URL=postgres://...")


@pytest.fixture(autouse=True)
def store_root(settings, tmp_path):
    """Every test gets its own artifact store."""
    settings.MODEL_STORE_ROOT = tmp_path / "models"
    store.ensure_layout()
    return settings.MODEL_STORE_ROOT


@pytest.fixture(autouse=True)
def audit_checkpoints(settings, tmp_path):
    """Every test keeps its own audit checkpoints (var/ holds the development database's)."""
    settings.AUDIT_CHECKPOINT_FILE = tmp_path / "audit-checkpoints.jsonl"
    return settings.AUDIT_CHECKPOINT_FILE


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def login_throttle(settings):
    """Fresh failed-login counters for every test (the cache outlives a test, Redis a run)."""
    settings.LOGIN_THROTTLE_KEY_PREFIX = f"test-login-{uuid.uuid4().hex}"


def _person(django_user_model, username, role=None, **extra):
    user = django_user_model.objects.create_user(
        username=username, password=helpers.PASSWORD, email=f"{username}@example.org", **extra
    )
    if role:
        roles.ensure_groups()
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def data_scientist(db, django_user_model):
    return _person(django_user_model, "dana", roles.DATA_SCIENTIST, first_name="Dana")


@pytest.fixture
def other_data_scientist(db, django_user_model):
    return _person(django_user_model, "sam", roles.DATA_SCIENTIST)


@pytest.fixture
def approver(db, django_user_model):
    return _person(django_user_model, "april", roles.APPROVER, is_staff=True)


@pytest.fixture
def viewer(db, django_user_model):
    return _person(django_user_model, "vic", roles.VIEWER)


@pytest.fixture
def admin_user(db, django_user_model):
    return _person(django_user_model, "ada", roles.ADMIN, is_staff=True)


@pytest.fixture
def outsider(db, django_user_model):
    return _person(django_user_model, "olly")


@pytest.fixture
def api():
    """api(user) -> a client that sends a real JWT for `user`; api() -> anonymous."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token = RefreshToken.for_user(user).access_token
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        return client

    return make


@pytest.fixture
def churn_model(data_scientist):
    return helpers.create_model(owner=data_scientist, name="churn_prediction")


@pytest.fixture(autouse=True)
def _purge_audit_after_transactional_tests(request):
    """Tests that really commit leave audit rows, which the table's triggers refuse to flush."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction"))
    if transactional:
        # Set up after (so torn down before) the fixture that flushes the tables.
        request.getfixturevalue("transactional_db")
    yield
    if transactional:
        helpers.purge_audit_events()


@pytest.fixture(autouse=True)
def migrated_rows(request):
    """Rows the migrations create (the default team), which a transactional test's flush
    removes: every test that uses the database starts with them."""
    marker = request.node.get_closest_marker("django_db")
    transactional = "transactional_db" in request.fixturenames or bool(
        marker and marker.kwargs.get("transaction"))
    if not (marker or transactional or "db" in request.fixturenames):
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    ensure_migrated_rows()


def ensure_migrated_rows() -> None:
    """What migrate creates besides tables: reads never create rows (they would write), so a
    flushed test database gets them back here."""
    from django.contrib.auth import get_user_model

    from core import audit
    from core.accounts import SYSTEM
    from core.models import AuditChainHead
    from governance.models import Policy
    from monitoring.services import ensure_default_rules
    from registry.models import DEFAULT_TEAM, Team

    Team.objects.get_or_create(name=DEFAULT_TEAM)
    if not Policy.objects.filter(model__isnull=True).exists():
        Policy.objects.create(model=None)
    AuditChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": audit.GENESIS_HASH,
                                                         "keyed_from_seq": 1})
    get_user_model().objects.get_or_create(username=SYSTEM, defaults={"is_active": False})
    ensure_default_rules()
    roles.ensure_groups()


@pytest.fixture(autouse=True)
def celery_eager():
    """Tasks run inline unless a test starts a real worker (tests/e2e)."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = False


@pytest.fixture(autouse=True)
def serving_state(settings):
    """Each test starts with empty prediction caches, and sees every change at once."""
    from predictions import auth, logs, serving, throttling

    settings.PREDICTION_ROUTING_TTL = 0.0
    settings.PREDICTION_LOG_BACKGROUND = False
    # Users are re-created with the same ids in every test: fresh quota counters each time.
    settings.PREDICTION_RATE_KEY_PREFIX = f"test-rate-{uuid.uuid4().hex}"
    for reset in (serving.routes.clear, serving.models.clear, auth.forget,
                  throttling.forget_limits, logs.discard):
        reset()
    yield
    from predictions.services import wait_for_shadows

    wait_for_shadows()
    logs.discard()


# --- A server without Pango (WeasyPrint's system library) ----------------------------------

class _NoPango(importlib.abc.MetaPathFinder):
    """Importing WeasyPrint fails the way it does without Pango: cffi's dlopen raises OSError."""

    def find_spec(self, name, path=None, target=None):
        if name == "weasyprint" or name.startswith("weasyprint."):
            raise OSError("cannot load library 'libpango-1.0-0': libpango-1.0-0: cannot open "
                          "shared object file: No such file or directory")
        return None


@pytest.fixture
def pango_missing(monkeypatch):
    for name in [n for n in sys.modules if n == "weasyprint" or n.startswith("weasyprint.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_NoPango(), *sys.meta_path])
