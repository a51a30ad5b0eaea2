"""The Celery app. Broker: Redis when REDIS_URL is set, otherwise kombu's file-system transport."""

import os
from pathlib import Path

from celery import Celery
from celery.signals import celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def ensure_broker_folders() -> None:
    """The file-system transport needs its folders before the first publish or consume."""
    options = app.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            Path(options[key]).mkdir(parents=True, exist_ok=True)


# Publishers (web processes) and consumers (workers) both need the folders.
ensure_broker_folders()


@celeryd_init.connect
def _worker_starting(**_kwargs):
    ensure_broker_folders()
