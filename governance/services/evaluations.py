"""Measured evaluations: what validation measured on a labelled sample, kept with the version."""

from __future__ import annotations

import contextlib
import hashlib
import logging

from django.db import transaction
from django.utils import timezone

from core import audit
from core.errors import ApplicationError, Conflict
from governance.evaluation import Evaluation
from governance.services import common
from registry import store
from registry.models import ArtifactFile, FileRole, ModelVersion
from registry.services import write_version_metadata

logger = logging.getLogger(__name__)


def evaluation_record(*, version: ModelVersion, evaluation: Evaluation, run=None,
                      actor=None) -> ModelVersion:
    """Keep a measured evaluation in the version's folder under evaluation/ and on its row.

    Each file (metrics.json and the plots) is written atomically and registered as an
    ArtifactFile (role `evaluation`, name `evaluation/<file>`) with its sha256, like every
    artifact; a file of an earlier evaluation that this one does not produce is removed.
    version.evaluation and metadata.json follow, with one `version.evaluation_recorded` event.
    If the transaction fails, the files it replaced are put back.
    """
    names = {f"{store.EVALUATION_FOLDER}/{name}": data
             for name, data in sorted(evaluation.files.items())}
    for name in names:
        store.validate_stored_name(name)
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in names.items()}
    previous: dict = {}
    written: list = []
    try:
        with transaction.atomic(durable=True):
            version = common.lock_for_change(version)
            if version.moving_by_deployment:
                raise Conflict(f"deployment #{version.moving_by_deployment} is moving "
                               f"{version}'s folder; the evaluation is kept at the next "
                               "validation", code="busy")
            folder = store.locate_version_dir(version.model.name, version.version,
                                              version.stage)
            if folder is None:
                raise ApplicationError(f"the folder of {version} is missing on disk; run "
                                       "`manage.py reconcile`", status_code=409,
                                       code="store_inconsistent")
            files = list(version.files.all())
            old = {f.filename: f for f in files if f.role == FileRole.EVALUATION}
            clash = [f.filename for f in files
                     if f.role != FileRole.EVALUATION and f.filename in names]
            if clash:
                raise Conflict(f"{clash[0]} is a file of another role", field="evaluation")
            before = {"evaluation": version.evaluation,
                      "files": {name: f.sha256 for name, f in sorted(old.items())}}
            position = max((f.position for f in files), default=-1)
            evaluation_folder = store.evaluation_dir(folder)
            for name, data in names.items():
                path = store.version_file(folder, name)
                row = old.get(name)
                # The same model on the same sample gives the same bytes (seeded, no time
                # stamp): an unchanged file is not rewritten, so no reader ever sees a hash
                # between two states.
                if row is not None and (row.sha256, row.size) == (hashes[name], len(data)) \
                        and path.is_file():
                    continue
                with contextlib.suppress(FileNotFoundError), store.open_no_follow(path) as fh:
                    previous[path] = fh.read()
                store.atomic_write_bytes(path, data)
                written.append(path)
                if row is None:
                    position += 1
                    ArtifactFile.objects.create(
                        version=version, role=FileRole.EVALUATION, filename=name,
                        position=position, size=len(data), sha256=hashes[name])
                elif (row.sha256, row.size) != (hashes[name], len(data)):
                    row.sha256, row.size = hashes[name], len(data)
                    row.save(update_fields=["sha256", "size"])
            stale = [name for name in old if name not in names]
            ArtifactFile.objects.filter(version=version, filename__in=stale).delete()
            version.evaluation = {
                **evaluation.summary,
                "run": getattr(run, "pk", None),
                "measured_at": timezone.now().isoformat(),
                "files": [{"name": name, "sha256": hashes[name], "size": len(names[name])}
                          for name in names],
            }
            version.save(update_fields=["evaluation"])
            version = (ModelVersion.objects.select_related("model")
                       .prefetch_related("files").get(pk=version.pk))
            write_version_metadata(version)
            audit.record(
                action="version.evaluation_recorded", actor=actor or common.system_user(),
                subject=version, before=before,
                after={"metrics": evaluation.summary["metrics"], "run": getattr(run, "pk", None),
                       "files": hashes})
            transaction.on_commit(lambda: _remove(evaluation_folder, stale))
    except BaseException:
        for path in written:  # the rows still name the files' earlier bytes
            with contextlib.suppress(OSError):
                if path in previous:
                    store.atomic_write_bytes(path, previous[path])
                else:
                    path.unlink()
        with contextlib.suppress(Exception):
            write_version_metadata(ModelVersion.objects.select_related("model")
                                   .get(pk=version.pk))
        raise
    return version


def _remove(folder, names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(OSError):
            (folder / name.split("/", 1)[1]).unlink()
