"""Bring the store's folders back into agreement with the database (the source of truth).

`reconcile()` compares every version row with the disk and every folder on disk with the
rows. It repairs what it can account for — a version folder left in the wrong stage folder
by an interrupted move, a stale or missing metadata.json or model_card.md (one it wrote), the
catalogue, its own temporary files older than a grace period — and reports the rest: a missing file or folder, a checksum
mismatch, a folder or file that no row explains. It never deletes anything it did not create.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from core import audit
from registry import cards, catalogue, store
from registry.metadata import document_bytes, version_document
from registry.models import ModelVersion

# Temporary files and folders of ours younger than this may belong to a request in flight.
TEMP_GRACE_SECONDS = 3600
# An uploaded zip unpacked for an import waits this long for its admin to confirm or cancel.
IMPORT_FOLDER_MAX_AGE_SECONDS = 24 * 3600


@dataclass
class Finding:
    kind: str  # e.g. missing_file, checksum_mismatch, wrong_stage_folder, stray_folder
    subject: str  # "<model> <version>" or a store-relative path
    detail: str
    repaired: bool = False

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "detail": self.detail,
            "repaired": self.repaired,
        }


def _older_than_grace(path: Path, seconds: int = TEMP_GRACE_SECONDS) -> bool:
    try:
        return time.time() - os.lstat(path).st_mtime > seconds
    except FileNotFoundError:
        return False


def _check_version(version: ModelVersion, repair: bool, findings: list[Finding]) -> None:
    name, number, stage = version.model.name, version.version, version.stage
    subject = f"{name} {number}"
    try:
        expected = store.version_dir(name, number, stage)
        found = store.locate_version_dir(name, number, stage)
    except store.StoreError as exc:
        findings.append(Finding("symlink", subject, f"refused: {exc} (left in place)"))
        return
    if found is None:
        findings.append(
            Finding("missing_folder", subject, f"no folder for it in any stage; expected "
                    f"{store.relative(expected)}")
        )
        return
    if found != expected:
        finding = Finding(
            "wrong_stage_folder", subject,
            f"found in {store.relative(found)}, the row says {stage}",
        )
        if repair:
            with transaction.atomic():
                # The row lock orders this against a deployment planning a move of the same
                # version; one that already planned is reported, not undone.
                ModelVersion.objects.select_for_update().filter(pk=version.pk).first()
                moving = ModelVersion.objects.values_list(
                    "moving_by_deployment", flat=True).get(pk=version.pk)
                if moving:
                    findings.append(Finding("move_in_progress", subject,
                                            f"{finding.detail}; deployment #{moving} is "
                                            "moving it"))
                    return
                store.move_dir(found, expected)
                audit.record(
                    action="store.repaired", actor=None, subject=version,
                    before={"folder": store.relative(found)},
                    after={"folder": store.relative(expected)},
                    reason="reconcile: folder moved to the stage its row records",
                )
            finding.repaired = True
            found = expected
        findings.append(finding)

    known = {store.METADATA_FILENAME, store.CARD_FILENAME}
    for artifact in version.files.all():
        known.add(artifact.filename.split("/")[0])
        try:
            digest, size = store.hash_file(store.version_file(found, artifact.filename))
        except FileNotFoundError:
            findings.append(Finding("missing_file", subject, f"{artifact.filename} is missing"))
            continue
        except (OSError, store.UnsafeName):
            findings.append(
                Finding("unreadable_file", subject, f"{artifact.filename} cannot be read "
                        "(a symlink or a permission problem)")
            )
            continue
        if digest != artifact.sha256 or size != artifact.size:
            findings.append(
                Finding("checksum_mismatch", subject,
                        f"{artifact.filename}: sha256 {digest} ({size} bytes) on disk, "
                        f"{artifact.sha256} ({artifact.size} bytes) registered")
            )

    wanted = document_bytes(version_document(version))
    metadata_path = found / store.METADATA_FILENAME
    try:
        current = metadata_path.read_bytes()
    except FileNotFoundError:
        current = None
    # Documents differ only in content, never merely in key order: both come from one renderer.
    if current != wanted:
        finding = Finding(
            "stale_metadata" if current is not None else "missing_metadata",
            subject, f"{store.METADATA_FILENAME} does not match the database row",
        )
        if repair:
            from registry.services import write_version_metadata

            write_version_metadata(version)
            finding.repaired = True
        findings.append(finding)

    _check_card(version, found, subject, repair, findings)

    for entry in sorted(found.iterdir()):
        if entry.name in known:
            continue
        if entry.name.startswith(store.TMP_FILE_PREFIX) and _older_than_grace(entry):
            finding = Finding("temp_file", subject, f"left-over temporary file {entry.name}")
            if repair:
                entry.unlink(missing_ok=True)
                finding.repaired = True
            findings.append(finding)
        elif not entry.name.startswith(store.TMP_FILE_PREFIX):
            findings.append(
                Finding("stray_file", subject, f"{entry.name} is not a file of this version "
                        "(left in place)")
            )


def _check_card(version: ModelVersion, folder: Path, subject: str, repair: bool,
                findings: list[Finding]) -> None:
    """model_card.md: rewritten when ours and missing or stale; another file of that name
    (one this app did not write) is reported and left in place."""
    path = folder / store.CARD_FILENAME
    try:
        with store.open_no_follow(path) as handle:
            current = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        current = None
    except OSError:
        findings.append(Finding("unreadable_file", subject, f"{store.CARD_FILENAME} cannot be "
                                "read (a symlink or a permission problem; left in place)"))
        return
    if current is None and not version.model_card:
        return  # no card to keep
    if current is not None and not cards.is_ours(current):
        findings.append(Finding("foreign_card", subject, f"{store.CARD_FILENAME} was not "
                                "written by this app (left in place)"))
        return
    if current == cards.card_file_text(version):
        return
    finding = Finding("missing_card" if current is None else "stale_card", subject,
                      f"{store.CARD_FILENAME} does not match the database row")
    if repair:
        from registry.services import write_version_card

        finding.repaired = write_version_card(version.pk)
    findings.append(finding)


def _check_disk(rows: set[tuple[str, str]], repair: bool, findings: list[Finding]) -> None:
    base = store.root()
    for folder in store.STAGE_FOLDERS.values():
        stage_path = base / folder
        if not stage_path.is_dir():
            continue
        for model_path in sorted(stage_path.iterdir()):
            if model_path.name in store.LAYOUT_FILES and model_path.is_file() \
                    and not model_path.is_symlink():
                continue
            if model_path.is_symlink():
                findings.append(Finding("symlink", store.relative(model_path),
                                        "symbolic links are not followed (left in place)"))
                continue
            if not model_path.is_dir():
                findings.append(Finding("stray_file", store.relative(model_path),
                                        "a file where model folders belong (left in place)"))
                continue
            for entry in sorted(model_path.iterdir()):
                rel = store.relative(entry)
                if store.TMP_DIR_RE.fullmatch(entry.name):
                    if _older_than_grace(entry):
                        finding = Finding("temp_folder", rel,
                                          "an interrupted registration's temporary folder")
                        if repair:
                            store.remove_own_dir(entry)
                            finding.repaired = True
                        findings.append(finding)
                    continue
                if entry.name.startswith(store.TMP_FILE_PREFIX):
                    continue
                version = entry.name[1:] if entry.name.startswith("v") else None
                if entry.is_symlink() or not entry.is_dir() or version is None:
                    findings.append(Finding("stray_entry", rel,
                                            "not a version folder (left in place)"))
                elif (model_path.name, version) not in rows:
                    findings.append(Finding("stray_folder", rel,
                                            "no registered version matches it (left in place)"))
    incoming = base / store.INCOMING_FOLDER
    if incoming.is_dir():
        for entry in sorted(incoming.iterdir()):
            if entry.is_file() and _older_than_grace(entry):
                finding = Finding("stale_upload", store.relative(entry),
                                  "an upload that was never registered")
                if repair:
                    entry.unlink(missing_ok=True)
                    finding.repaired = True
                findings.append(finding)
            elif (store.IMPORT_FOLDER_RE.fullmatch(entry.name) and entry.is_dir()
                  and not entry.is_symlink()
                  and _older_than_grace(entry, IMPORT_FOLDER_MAX_AGE_SECONDS)):
                finding = Finding("stale_import", store.relative(entry),
                                  "an uploaded zip unpacked for an import never confirmed")
                if repair:
                    store.remove_own_dir(entry)
                    finding.repaired = True
                findings.append(finding)


def _duplicate_folders(findings: list[Finding]) -> None:
    seen: dict[tuple[str, str], list[str]] = {}
    for stage, model_name, version, _path in store.iter_version_dirs():
        seen.setdefault((model_name, version), []).append(stage)
    for (model_name, version), stages in seen.items():
        if len(stages) > 1:
            findings.append(
                Finding("duplicate_folder", f"{model_name} {version}",
                        f"folders in {', '.join(stages)} (left in place; the row's stage wins)")
            )


def reconcile(*, repair: bool = True) -> list[Finding]:
    store.ensure_layout()
    findings: list[Finding] = []
    rows = set()
    versions = ModelVersion.objects.select_related("model", "created_by").prefetch_related(
        "files"
    )
    for version in versions.iterator(chunk_size=500):
        rows.add((version.model.name, version.version))
        _check_version(version, repair, findings)
    _check_disk(rows, repair, findings)
    _duplicate_folders(findings)
    if repair:
        kept = catalogue.rewrite()
        if kept is not None:
            findings.append(Finding(
                "foreign_catalogue", store.relative(catalogue.path()),
                f"a catalogue this app did not write was kept as {kept.name}; rewritten",
                repaired=True))
    elif catalogue.path().exists() and not catalogue.is_ours(catalogue.path()):
        findings.append(Finding("foreign_catalogue", store.relative(catalogue.path()),
                                "a catalogue this app did not write (kept aside when repaired)"))
    return findings
