"""`metadata/model_registry.json`: the catalogue of every model and version, rewritten on change."""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path

from django.utils import timezone

from registry import store
from registry.metadata import document_bytes

# Marks the catalogues this app writes: any other is a team's own, never overwritten unkept.
GENERATOR = "model-governance"


@contextmanager
def _exclusive_lock():
    # Concurrent rewriters take turns, and each reads the database after taking the lock, so
    # the last rename always carries a snapshot at least as new as every committed change.
    lock_path = store.ensure_layout() / store.METADATA_FOLDER / ".catalogue.lock"
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def catalogue_document() -> dict:
    from registry.models import ArtifactFile, ModelVersion, RegisteredModel

    models = {}
    for row in RegisteredModel.objects.values(
        "id", "name", "description", "task_type", "owner__username", "created_at"
    ).order_by("name"):
        models[row["id"]] = {
            "name": row["name"],
            "description": row["description"],
            "task_type": row["task_type"],
            "owner": row["owner__username"],
            "created_at": row["created_at"].isoformat(),
            "production_version": None,
            "latest_version": None,
            "versions": {},
        }
    model_files = dict(
        ArtifactFile.objects.filter(role="model").values_list("version_id", "sha256")
    )
    # Highest SemVer first, so the first version seen per model is its latest.
    versions = ModelVersion.objects.values(
        "id", "model_id", "model__name", "version", "stage", "framework", "algorithm",
        "metrics", "created_at",
    ).order_by("model_id", "-major", "-minor", "-patch", "-prerelease_key")
    for row in versions.iterator(chunk_size=2000):
        entry = models[row["model_id"]]
        if entry["latest_version"] is None:
            entry["latest_version"] = row["version"]
        if row["stage"] == "production":
            entry["production_version"] = row["version"]
        entry["versions"][row["version"]] = {
            "stage": row["stage"],
            "path": f"{store.STAGE_FOLDERS[row['stage']]}/{row['model__name']}/v{row['version']}",
            "framework": row["framework"],
            "algorithm": row["algorithm"],
            "metrics": row["metrics"],
            "sha256": model_files.get(row["id"]),
            "created_at": row["created_at"].isoformat(),
        }
    return {
        "generator": GENERATOR,
        "generated_at": timezone.now().isoformat(),
        "model_count": len(models),
        "models": {entry["name"]: entry for entry in models.values()},
    }


def path() -> Path:
    return store.root() / store.METADATA_FOLDER / store.CATALOGUE_NAME


def is_ours(target: Path) -> bool:
    """A catalogue this app wrote: JSON carrying our `generator` mark."""
    try:
        document = json.loads(target.read_bytes())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and document.get("generator") == GENERATOR


def _keep_aside(target: Path) -> Path:
    """Keep a catalogue we did not write under a dated name beside it (a hard link, so its
    bytes stay as they were, and an existing name is never overwritten)."""
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        kept = target.with_name(f"{target.stem}.kept-{stamp}{f'-{n}' if n else ''}.json")
        try:
            os.link(target, kept)
            return kept
        except FileExistsError:
            continue
    raise store.StoreError(f"could not keep {target.name} aside")


def rewrite() -> Path | None:
    """Write the catalogue from the database. A catalogue found there that this app did not
    write (a team's own, from before they pointed MODEL_STORE_ROOT here) is kept aside first;
    returns where, or None."""
    with _exclusive_lock():
        target = path()
        kept = None
        if target.exists() and not is_ours(target):
            kept = _keep_aside(target)
        store.atomic_write_bytes(target, document_bytes(catalogue_document()))
    return kept
