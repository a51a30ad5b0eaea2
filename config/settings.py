"""Settings for the model governance app, read from the environment.

One module for every mode. Each variable has a default that runs a fresh checkout with no
services (SQLite, a file-system Celery broker, local-memory cache); `DJANGO_ENV=production`
turns on the deploy hardening and refuses to start without a real SECRET_KEY, JWT_SIGNING_KEY
and ALLOWED_HOSTS.
A malformed value fails loudly at start-up rather than falling back silently.
"""

import ipaddress
import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A `.env` beside manage.py is read if present; real environment variables win.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)
# Run-time files the app makes for itself (SQLite file, broker folders, dev secret key).
VAR_DIR = Path(env.str("APP_VAR_DIR", default=str(BASE_DIR / "var")))

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be 'development' or 'production', not {DJANGO_ENV!r}"
    )
PRODUCTION = DJANGO_ENV == "production"

DEBUG = env.bool("DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DEBUG must be off when DJANGO_ENV=production")


def _development_key(name: str) -> str:
    """A random key kept in var/ so that sessions and tokens survive restarts on a laptop."""
    from django.core.management.utils import get_random_secret_key

    path = VAR_DIR / name
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        # Made aside (never readable by others) and linked into place: processes that start
        # together (test workers, servers) all end up with the first one's key.
        spare = path.with_name(f".{name}.{os.getpid()}")
        with os.fdopen(os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(get_random_secret_key())
        try:
            os.link(spare, path)
        except FileExistsError:
            pass
        finally:
            spare.unlink()
    return path.read_text().strip()


if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # no default: a missing key is an error
    if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure"):
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS")
    # Its own key: whoever learns SECRET_KEY (or this one) cannot also mint the other's secrets.
    JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY")
    if len(JWT_SIGNING_KEY) < 50 or JWT_SIGNING_KEY == SECRET_KEY:
        raise ImproperlyConfigured(
            "JWT_SIGNING_KEY must be at least 50 random characters, and not the SECRET_KEY"
        )
else:
    SECRET_KEY = env.str("SECRET_KEY", default="") or _development_key("secret_key")
    JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="") or _development_key("jwt_signing_key")
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])


def _audit_chain_key() -> str:
    """The audit chain's HMAC key: never in the database, so its writer cannot re-hash history.

    From AUDIT_CHAIN_KEY or the file AUDIT_CHAIN_KEY_FILE names; in development, when neither
    is set, generated once into var/ like the other development keys.
    """
    key = env.str("AUDIT_CHAIN_KEY", default="")
    path = env.str("AUDIT_CHAIN_KEY_FILE", default="")
    if key and path:
        raise ImproperlyConfigured("set AUDIT_CHAIN_KEY or AUDIT_CHAIN_KEY_FILE, not both")
    if path:
        try:
            key = Path(path).read_text().strip()
        except OSError as error:
            raise ImproperlyConfigured(f"AUDIT_CHAIN_KEY_FILE: {error}") from error
    elif not key and not PRODUCTION:
        key = _development_key("audit_chain_key")
    if not key:
        raise ImproperlyConfigured(
            "AUDIT_CHAIN_KEY (or AUDIT_CHAIN_KEY_FILE) is required when DJANGO_ENV=production")
    if len(key) < 32:
        raise ImproperlyConfigured("AUDIT_CHAIN_KEY must be at least 32 random characters")
    if key == SECRET_KEY:
        raise ImproperlyConfigured("AUDIT_CHAIN_KEY must differ from SECRET_KEY")
    return key


AUDIT_CHAIN_KEY = _audit_chain_key()
# Signed checkpoints of the chain's head; keep a copy on storage the database's owner cannot
# write (the log carries each line too).
AUDIT_CHECKPOINT_FILE = Path(
    env.str("AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit-checkpoints.jsonl"))
)

INSTALLED_APPS = [
    "config.admin_site.GovernanceAdminConfig",  # django.contrib.admin, with our home page
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "health_check",
    "core",
    "registry",
    "governance",
    "predictions",
    "monitoring",
    "interop",
    "compliance",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.RequestContextMiddleware",
    "core.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The admin's home page and base, and the 404 and 500 pages.
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite ignores select_for_update; IMMEDIATE transactions take the write lock at BEGIN,
    # which serialises writers instead of failing one of them with "database is locked".
    _db.setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not memory, so that servers and workers started by end-to-end tests share it.
    _db["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    _db["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
else:
    _db.setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    _db["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: broker, cache, or nothing ---------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if PRODUCTION and not REDIS_URL:
    # Several web processes must share the counters of failed logins and of quotas, and
    # workers on several machines one broker.
    raise ImproperlyConfigured("REDIS_URL is required when DJANGO_ENV=production")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="mgov"),
        }
    }
else:
    # Quota and failed-login counters live here: Django's default of 300 entries would let a
    # burst of attempts evict them.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                          "OPTIONS": {"MAX_ENTRIES": 100_000}}}

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = REDIS_URL or "filesystem://localhost//"
CELERY_FILESYSTEM_BROKER_DIR = Path(
    env.str("CELERY_FILESYSTEM_BROKER_DIR", default=str(VAR_DIR / "celery-broker"))
)
if not REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_FILESYSTEM_BROKER_DIR / "queue"),
        "control_folder": str(CELERY_FILESYSTEM_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"

# --- auth and the API -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"
# Roles that read every team's models (admins always do); the others see their teams'.
TEAM_READ_ALL_ROLES = env.list("TEAM_READ_ALL_ROLES", default=["viewer"])
# governance/login.py: failed logins are counted per (username, address), per address and per
# username; past a threshold each attempt waits 2**(failures - threshold) s, capped.
AUTHENTICATION_BACKENDS = ["governance.login.ThrottledModelBackend"]
LOGIN_THROTTLE_PER_USER_AND_ADDRESS = env.int("LOGIN_THROTTLE_PER_USER_AND_ADDRESS", default=5)
LOGIN_THROTTLE_PER_ADDRESS = env.int("LOGIN_THROTTLE_PER_ADDRESS", default=20)
LOGIN_THROTTLE_PER_USER = env.int("LOGIN_THROTTLE_PER_USER", default=50)
LOGIN_THROTTLE_MAX_WAIT_SECONDS = env.int("LOGIN_THROTTLE_MAX_WAIT_SECONDS", default=15 * 60)
LOGIN_THROTTLE_FORGET_SECONDS = env.int("LOGIN_THROTTLE_FORGET_SECONDS", default=60 * 60)
LOGIN_THROTTLE_KEY_PREFIX = env.str("LOGIN_THROTTLE_KEY_PREFIX", default="login-throttle")
if min(LOGIN_THROTTLE_PER_USER_AND_ADDRESS, LOGIN_THROTTLE_PER_ADDRESS, LOGIN_THROTTLE_PER_USER,
       LOGIN_THROTTLE_MAX_WAIT_SECONDS, LOGIN_THROTTLE_FORGET_SECONDS) < 1:
    raise ImproperlyConfigured("LOGIN_THROTTLE_* settings must be at least 1")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Service accounts' tokens: the prediction API, and registry reads they were granted.
        "predictions.auth.ApiTokenAuthentication",
        "registry.tokens.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.HasRole"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "core.filters.StrictOrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "core.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=env.int("JWT_ACCESS_TOKEN_MINUTES", default=15)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_TOKEN_DAYS", default=1)),
    "UPDATE_LAST_LOGIN": False,
    "SIGNING_KEY": JWT_SIGNING_KEY,
    # Tokens carry a digest of the password hash: a new password revokes every earlier token.
    "CHECK_REVOKE_TOKEN": True,
    "TOKEN_REFRESH_SERIALIZER": "registry.tokens.TokenRefreshSerializer",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Model governance API",
    "DESCRIPTION": (
        "Register model versions, download their artifacts and follow them through "
        "validation, approval and deployment."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["core.permissions.HasRole"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # `<id:pk>` (core.limits.IdConverter) is an integer, as `<int:pk>` was.
    "PATH_CONVERTER_OVERRIDES": {"id": int},
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry.models.Stage",
        "FrameworkEnum": "registry.models.Framework",
        "FileRoleEnum": "registry.models.FileRole",
    },
}

# --- the artifact store -----------------------------------------------------------------------
MODEL_STORE_ROOT = Path(env.str("MODEL_STORE_ROOT", default=str(BASE_DIR / "models")))
# Largest accepted registration request (all parts together), in bytes.
MODEL_MAX_UPLOAD_BYTES = env.int("MODEL_MAX_UPLOAD_BYTES", default=2 * 1024**3)
FILE_UPLOAD_PERMISSIONS = 0o640
# A zip of a model directory uploaded in the admin (registry/importing/archive.py): every
# member is checked against these before anything is unpacked.
IMPORT_ZIP_MAX_BYTES = env.int("IMPORT_ZIP_MAX_BYTES", default=2 * 1024**3)  # all, unpacked
IMPORT_ZIP_MEMBER_MAX_BYTES = env.int("IMPORT_ZIP_MEMBER_MAX_BYTES", default=2 * 1024**3)
IMPORT_ZIP_MAX_MEMBERS = env.int("IMPORT_ZIP_MAX_MEMBERS", default=10_000)
if min(IMPORT_ZIP_MAX_BYTES, IMPORT_ZIP_MEMBER_MAX_BYTES, IMPORT_ZIP_MAX_MEMBERS) < 1:
    raise ImproperlyConfigured("IMPORT_ZIP_MAX_BYTES, IMPORT_ZIP_MEMBER_MAX_BYTES and "
                               "IMPORT_ZIP_MAX_MEMBERS must be positive")
# Where the sandbox's artifact copies and its root file system are made (one folder per run).
VALIDATION_SANDBOX_DIR = Path(
    env.str("VALIDATION_SANDBOX_DIR", default=str(VAR_DIR / "sandbox"))
)
# `required`: an artifact is only ever loaded behind namespaces (its own root file system, no
# network, an unprivileged user); `best-effort` falls back to a plain child process with
# rlimits where the machine has no namespaces (a laptop without root or user namespaces).
VALIDATION_SANDBOX_ISOLATION = env.str(
    "VALIDATION_SANDBOX_ISOLATION", default="required" if PRODUCTION else "best-effort")
if VALIDATION_SANDBOX_ISOLATION not in {"required", "best-effort"}:
    raise ImproperlyConfigured("VALIDATION_SANDBOX_ISOLATION must be 'required' or 'best-effort'")
# Labelled rows of the reference sample that validation measures the model on (each column is
# also predicted once shuffled, for permutation importance).
VALIDATION_EVALUATION_MAX_ROWS = env.int("VALIDATION_EVALUATION_MAX_ROWS", default=2000)
if VALIDATION_EVALUATION_MAX_ROWS < 1:
    raise ImproperlyConfigured("VALIDATION_EVALUATION_MAX_ROWS must be positive")

# --- serving predictions ----------------------------------------------------------------------
PREDICTION_MAX_ROWS = env.int("PREDICTION_MAX_ROWS", default=10_000)
PREDICTION_MAX_BODY_BYTES = env.int("PREDICTION_MAX_BODY_BYTES", default=32 * 1024**2)
PREDICTION_RATE_LIMIT_PER_HOUR = env.int("PREDICTION_RATE_LIMIT_PER_HOUR", default=1000)
# Cache keys of the quota counters (several deployments sharing one Redis keep theirs apart).
PREDICTION_RATE_KEY_PREFIX = env.str("PREDICTION_RATE_KEY_PREFIX", default="predict-rate")
PREDICTION_CACHE_MAX_MB = env.int("PREDICTION_CACHE_MAX_MB", default=2048)
# Load every production model when a web process starts (gunicorn post_fork), not lazily.
PREDICTION_PRELOAD = env.bool("PREDICTION_PRELOAD", default=False)
# How often a web process checks whether what serves has changed (seconds).
PREDICTION_ROUTING_TTL = env.float("PREDICTION_ROUTING_TTL", default=0.5)
PREDICTION_AUTH_CACHE_SECONDS = env.float("PREDICTION_AUTH_CACHE_SECONDS", default=30.0)
PREDICTION_LOG_SAMPLE_RATE = env.float("PREDICTION_LOG_SAMPLE_RATE", default=1.0)
PREDICTION_LOG_FLUSH_SECONDS = env.float("PREDICTION_LOG_FLUSH_SECONDS", default=0.5)
PREDICTION_LOG_BACKGROUND = env.bool("PREDICTION_LOG_BACKGROUND", default=True)
# Single-row requests are logged in blocks, one row per flush and version (predictions.blocks).
PREDICTION_LOG_BLOCKS = env.bool("PREDICTION_LOG_BLOCKS", default=True)
PREDICTION_TORCH_THREADS = env.int("PREDICTION_TORCH_THREADS", default=1)
if not 0.0 <= PREDICTION_LOG_SAMPLE_RATE <= 1.0:
    raise ImproperlyConfigured("PREDICTION_LOG_SAMPLE_RATE must be between 0 and 1")
# Prediction logs and error records older than this many days are deleted every day
# (monitoring.prediction_logs_prune); rows with feedback stay while a monitoring window needs them.
PREDICTION_LOG_RETENTION_DAYS = env.int("PREDICTION_LOG_RETENTION_DAYS", default=30)
if PREDICTION_LOG_RETENTION_DAYS < 1:
    raise ImproperlyConfigured("PREDICTION_LOG_RETENTION_DAYS must be at least 1")

# --- monitoring -------------------------------------------------------------------------------
# The window every pass computes all its figures over (the admin's charts); rules with other
# windows add theirs.
MONITORING_WINDOW_MINUTES = env.int("MONITORING_WINDOW_MINUTES", default=60)
# At most this many of a window's newest logged rows are read by one pass (memory bound).
MONITORING_MAX_ROWS = env.int("MONITORING_MAX_ROWS", default=200_000)
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=10.0)
# Webhooks reach only public addresses, and these networks (CIDRs): no one who manages webhooks
# should be able to make the server call its own loopback, LAN or cloud metadata service.
# bin/run allows 127.0.0.1/32 in development for `manage.py webhook_listen`.
WEBHOOK_ALLOWED_NETWORKS = env.list("WEBHOOK_ALLOWED_NETWORKS", default=[])
for _network in WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(
            f"WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a network such as 10.0.0.0/8"
        ) from None
# Waits between attempts of an alert notification; after the last, it is marked failed.
ALERT_DELIVERY_BACKOFF_SECONDS = [
    int(v) for v in env.list("ALERT_DELIVERY_BACKOFF_SECONDS",
                             default=["5", "30", "120", "600", "1800", "3600"])
]

# --- i18n, static -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Outside production the app serves static files without a collectstatic step.
WHITENOISE_USE_FINDERS = not PRODUCTION

EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="model-governance@localhost")
# The address people use to reach the app, for links in e-mail.
APP_BASE_URL = env.str("APP_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- security ---------------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
if env.bool("BEHIND_TLS_PROXY", default=PRODUCTION):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Trusted proxies whose X-Forwarded-For the audit trail believes (count of hops).
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "health_check": {"level": "ERROR"},
        # The PDF renderer logs each rendering step at INFO; a refused image is an ERROR.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}
