"""gunicorn settings: `gunicorn -c config/gunicorn.py config.wsgi:application`.

The app is loaded once, in the master (`preload_app`), and with PREDICTION_PRELOAD so are
the production models of fork-safe formats (scikit-learn; verified and approved, as any
load): the workers are forked from it and share those pages instead of each loading its own
copy. Start-up objects are frozen out of the collector before the fork, so that a collection
in a worker does not write to (and so un-share) them. Each worker then starts the serving
watcher (notices deployments within a second and loads the new versions before requests ask
for them), loads what could not cross the fork (torch, ONNX) and warms every model. Logs
buffered for the prediction log are written at exit.

Workers are sync workers by default, two per core: one request at a time each, taken from
the listening socket's single queue by whichever worker is free, so 8 concurrent clients get
equal shares (issue 14: with gthread workers a keep-alive connection stays with the worker
that accepted it, and one worker's connections got 2-6x the others'). GUNICORN_THREADS > 1
switches to gthread workers (keep-alive for GUNICORN_KEEPALIVE seconds).
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * (os.cpu_count() or 1))))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
graceful_timeout = 10
# A sync worker silent this long is killed and replaced: long enough for the slowest honest
# request (a large upload, an audit export), unlike gthread whose main thread kept beating.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
# Seconds a keep-alive connection may wait for its next request (gthread workers only).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Empty turns the access log off (benchmarks).
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-") or None
# Django and the models are loaded in the master and shared copy-on-write by the workers.
# A code change therefore needs a restart, not a HUP.
preload_app = True


def when_ready(server):
    """In the master, before any worker is forked."""
    from django.conf import settings
    from django.core.cache import caches
    from django.db import connections

    if settings.PREDICTION_PRELOAD:
        from predictions import serving

        try:
            loaded = serving.preload(before_fork=True)
            server.log.info("loaded before fork, shared by the workers: %s",
                            ", ".join(loaded) or "nothing")
        except Exception as exc:  # e.g. the database is not up yet: each worker loads its own
            server.log.warning("nothing loaded before fork: %s", exc)
    # Nothing the master opened may be shared by two processes.
    connections.close_all()
    caches.close_all()
    freeze_startup_objects()


def post_worker_init(worker):
    from django.conf import settings

    from predictions import serving

    serving.start_watcher()
    if settings.PREDICTION_PRELOAD:
        loaded = serving.preload()
        inherited = serving.models.inherited()
        worker.log.info("preloaded %s; %d version(s) inherited from the master",
                        ", ".join(loaded) or "nothing more", len(inherited))
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
