"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi:application`.

Each worker starts the serving watcher (notices deployments within a second and loads the
new versions before requests ask for them) and, with PREDICTION_PRELOAD, loads every
production model at start. Logs buffered for the prediction log are written at exit.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
graceful_timeout = 10
# Seconds a keep-alive connection may wait for its next request (gthread workers).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Empty turns the access log off (benchmarks).
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None


def post_worker_init(worker):
    from django.conf import settings

    from predictions import serving

    serving.start_watcher()
    if settings.PREDICTION_PRELOAD:
        loaded = serving.preload()
        worker.log.info("preloaded %s", ", ".join(loaded) or "nothing")
    freeze_startup_objects()


def freeze_startup_objects():
    """Move what start-up allocated (Django, the apps, preloaded models) out of the
    collector's generations: it lives as long as the worker, and a full collection walking
    its ~200k objects was the 100-150 ms tail of list requests (issue 14). Only what
    requests allocate is collected from here on."""
    gc.collect()
    gc.freeze()


def worker_exit(server, worker):
    try:
        from predictions import logs

        logs.flush()
    except Exception as exc:  # the database may already be gone
        worker.log.warning("prediction logs not flushed at exit: %s", exc)
