"""The on-disk artifact store.

Layout under MODEL_STORE_ROOT (the seeds' model directory)::

    experiments/<model>/v<version>/   model file(s), preprocessors, metadata.json
    staging/<model>/v<version>/
    production/<model>/v<version>/
    archived/<model>/v<version>/
    metadata/model_registry.json      catalogue of every model and version
    .incoming/                        uploads being received (same file system, so renames)
    .incoming/import-<hex>/           an uploaded zip unpacked for an import, until confirmed

Every path is built by `safe_join`, which accepts only validated names, refuses symlinks below
the root and checks the result stays inside it. Every write is atomic: a temporary file in the
destination folder, fsync, rename, fsync of the folder. Bytes are hashed while they stream in,
never by reading a stored file back.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import re
import shutil
import stat
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

STAGE_FOLDERS = {
    "experiment": "experiments",
    "staging": "staging",
    "production": "production",
    "archived": "archived",
}
FOLDER_STAGES = {folder: stage for stage, folder in STAGE_FOLDERS.items()}
METADATA_FOLDER = "metadata"
CATALOGUE_NAME = "model_registry.json"
METADATA_FILENAME = "metadata.json"
# The version's model card, rendered from its row (registry/cards.py).
CARD_FILENAME = "model_card.md"
INCOMING_FOLDER = ".incoming"
# Files the repository itself commits into the store's folders (so that a clone has them):
# part of the layout, never a finding of `reconcile`.
LAYOUT_FILES = frozenset({".gitkeep", "README.md"})
CHUNK_SIZE = 1024 * 1024

MODEL_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
FILENAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RESERVED_FILENAMES = {METADATA_FILENAME, CARD_FILENAME}
# Our own temporary names, so that reconcile can tell them from files it must not touch.
TMP_DIR_RE = re.compile(r"^\.v(?P<version>.+)\.tmp-[0-9a-f]{32}$")
TMP_FILE_PREFIX = ".tmp-"
# An uploaded zip unpacked for an import (registry/importing/archive.py), in `.incoming/`.
IMPORT_FOLDER_PREFIX = "import-"
IMPORT_FOLDER_RE = re.compile(r"^import-[0-9a-f]{32}$")


class StoreError(Exception):
    """A store operation failed; the message never contains a server path."""


class UnsafeName(StoreError, ValueError):
    """A name taken from user input is not allowed in the store."""


def validate_model_name(name: str) -> str:
    if not isinstance(name, str) or not MODEL_NAME_RE.fullmatch(name):
        raise UnsafeName(
            "model names are 1-64 characters: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit"
        )
    return name


def validate_filename(name: str) -> str:
    if not isinstance(name, str) or not FILENAME_RE.fullmatch(name) or ".." in name:
        raise UnsafeName(
            "file names are 1-128 characters: letters, digits, '_', '-' and '.', starting "
            "with a letter or digit, with no path separators and no '..'"
        )
    if name.lower() in RESERVED_FILENAMES:
        raise UnsafeName(f"{name!r} is written by the registry and cannot be uploaded")
    return name


def validate_version_folder_part(version: str) -> str:
    # The version is already a parsed semver; this is the defence in depth for paths.
    if not re.fullmatch(r"[0-9A-Za-z.-]{1,64}", version) or ".." in version:
        raise UnsafeName("not a valid version")
    return version


# Validation's measured evaluation lives in this sub-folder of a version folder; its files'
# rows are named "evaluation/<file>". No other sub-folder exists.
EVALUATION_FOLDER = "evaluation"


def validate_stored_name(name: str) -> str:
    """A file row's name: a flat file name, or "evaluation/<file name>". Never a path that
    could leave the version folder."""
    parts = name.split("/") if isinstance(name, str) else [None]
    if len(parts) == 2 and parts[0] == EVALUATION_FOLDER:
        parts = parts[1:]
    if len(parts) != 1 or not isinstance(parts[0], str) or not FILENAME_RE.fullmatch(parts[0]) \
            or ".." in parts[0]:
        raise UnsafeName("not a file name of a version folder")
    return name


def version_file(folder: Path, name: str) -> Path:
    """The path of a version's file (flat, or in its evaluation/ folder), refusing an unsafe
    name and an evaluation/ folder that is a symbolic link."""
    validate_stored_name(name)
    if "/" in name:
        sub = folder / EVALUATION_FOLDER
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(sub).st_mode):
                raise UnsafeName("the store does not follow symbolic links")
    return folder / name


def evaluation_dir(folder: Path) -> Path:
    """The version's evaluation/ folder, made durably if new (never through a symlink)."""
    sub = folder / EVALUATION_FOLDER
    if sub.is_symlink():
        raise UnsafeName("the store does not follow symbolic links")
    if not sub.is_dir():
        with contextlib.suppress(FileExistsError):
            sub.mkdir()
        fsync_dir(folder)
    return sub


def root() -> Path:
    # The root itself may be a symlink (a mounted volume); below it, none are followed.
    return Path(settings.MODEL_STORE_ROOT).resolve()


def safe_join(*parts: str) -> Path:
    """Join store-relative parts, refusing anything that could leave the root."""
    base = root()
    path = base
    for part in parts:
        if (
            not isinstance(part, str)
            or not part
            or part in {".", ".."}
            or "/" in part
            or "\\" in part
            or "\0" in part
            or os.path.isabs(part)
        ):
            raise UnsafeName("unsafe path component")
        path = path / part
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise UnsafeName("the store does not follow symbolic links")
    if not path.resolve().is_relative_to(base):
        raise UnsafeName("path escapes the store")
    return path


def ensure_layout() -> Path:
    base = root()
    for folder in [*STAGE_FOLDERS.values(), METADATA_FOLDER, INCOMING_FOLDER]:
        (base / folder).mkdir(parents=True, exist_ok=True)
    return base


def model_dir(model_name: str, stage: str) -> Path:
    return safe_join(STAGE_FOLDERS[stage], validate_model_name(model_name))


def version_dir(model_name: str, version: str, stage: str) -> Path:
    return safe_join(
        STAGE_FOLDERS[stage],
        validate_model_name(model_name),
        "v" + validate_version_folder_part(version),
    )


def relative(path: Path) -> str:
    """Store-relative form of a path, for messages (never the server's absolute path)."""
    try:
        return str(path.relative_to(root()))
    except ValueError:
        return path.name


def locate_version_dir(model_name: str, version: str, stage: str) -> Path | None:
    """The folder of a version: where its stage says, or (mid-move) in another stage folder."""
    expected = version_dir(model_name, version, stage)
    if expected.is_dir():
        return expected
    for other in STAGE_FOLDERS:
        if other != stage:
            candidate = version_dir(model_name, version, other)
            if candidate.is_dir():
                return candidate
    return None


# --- durable writes ---------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TMP_FILE_PREFIX)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


@dataclass
class IncomingFile:
    """Bytes received into `.incoming/`, hashed on the way in, waiting to be placed."""

    path: Path
    name: str
    role: str
    size: int
    sha256: str

    def discard(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class HashingWriter:
    """A new file in `.incoming/` that hashes and counts what is written to it.

    Hashing and writing run on a helper thread (both release the GIL), so that they overlap
    with the caller's own work — for an upload, Django parsing the multipart stream. At most
    `QUEUE_CHUNKS` chunks wait in memory.
    """

    QUEUE_CHUNKS = 4

    def __init__(self) -> None:
        incoming = ensure_layout() / INCOMING_FOLDER
        fd, name = tempfile.mkstemp(dir=incoming, prefix="upload-")
        self.path = Path(name)
        self._fh = os.fdopen(fd, "wb", buffering=0)  # chunks are large; skip a copy
        self._hash = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=self.QUEUE_CHUNKS)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="hashing-writer", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._fh.write(chunk)
                    self._hash.update(chunk)
                except BaseException as exc:  # handed to the caller by write() or finish()
                    self._error = exc

    def write(self, chunk: bytes | memoryview) -> None:
        if self._error is not None:
            raise self._error
        # Queued as it is when nothing can change it before the thread writes it (bytes, or
        # a read-only view of bytes: an upload's chunk); a copy of anything mutable.
        if not isinstance(chunk, bytes) and not (isinstance(chunk, memoryview) and
                                                 chunk.readonly):
            chunk = bytes(chunk)
        self._queue.put(chunk)
        self.size += len(chunk)

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self, *, name: str, role: str) -> IncomingFile:
        self._stop()
        if self._error is not None:
            self.abort()
            raise self._error
        os.fsync(self._fh.fileno())
        self._fh.close()
        return IncomingFile(self.path, name, role, self.size, self._hash.hexdigest())

    def abort(self) -> None:
        self._stop()
        self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def ingest_stream(stream, *, name: str, role: str, max_bytes: int | None = None) -> IncomingFile:
    """Copy a readable binary stream into `.incoming/`, hashing in the same pass."""
    validate_filename(name)
    writer = HashingWriter()
    try:
        while chunk := stream.read(CHUNK_SIZE):
            writer.write(chunk)
            if max_bytes is not None and writer.size > max_bytes:
                raise StoreError(f"{name} is larger than {max_bytes} bytes")
        return writer.finish(name=name, role=role)
    except BaseException:
        writer.abort()
        raise


def ingest_path(path: Path, *, role: str, name: str | None = None) -> IncomingFile:
    with open(path, "rb") as fh:
        return ingest_stream(fh, name=name or Path(path).name, role=role)


def hash_file(path: Path) -> tuple[str, int]:
    """sha256 and size of a stored file, streaming (for reconcile and integrity checks)."""
    digest = hashlib.sha256()
    size = 0
    with open_no_follow(path) as fh:
        while chunk := fh.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def open_no_follow(path: Path):
    """Open a stored file for reading, refusing a symlink in its last component."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    return os.fdopen(fd, "rb")


# --- version folders --------------------------------------------------------------------------


def assemble_version_dir(
    model_name: str, version: str, stage: str, files: list[IncomingFile], metadata: bytes
) -> Path:
    """Move incoming files into a hidden temporary version folder beside the final one.

    Nothing is copied: the files are renamed out of `.incoming/`. The folder becomes visible
    only when `publish_version_dir` renames it to `v<version>`.
    """
    parent = model_dir(model_name, stage)
    make_dirs_durable(parent)
    validate_version_folder_part(version)
    tmp = parent / f".v{version}.tmp-{uuid.uuid4().hex}"
    tmp.mkdir()
    for incoming in files:
        os.rename(incoming.path, tmp / validate_filename(incoming.name))
    atomic_write_bytes(tmp / METADATA_FILENAME, metadata)
    fsync_dir(tmp)
    return tmp


def make_dirs_durable(path: Path) -> None:
    """mkdir -p, fsyncing the parent of each folder it creates: a new `<stage>/<model>/`
    folder's own entry must be on disk before a version is renamed into it, or a power cut
    could lose the folder with the version in it."""
    if path.is_dir():
        return
    make_dirs_durable(path.parent)
    with contextlib.suppress(FileExistsError):  # a concurrent request made it first
        path.mkdir()
    fsync_dir(path.parent)


def publish_version_dir(tmp: Path, final: Path) -> None:
    if final.exists() or final.is_symlink():
        raise StoreError(f"{relative(final)} already exists on disk")
    os.rename(tmp, final)
    fsync_dir(final.parent)


def place_file(incoming: IncomingFile, folder: Path) -> Path:
    """Rename a received file into an existing version folder (a rename, never a copy)."""
    target = folder / validate_filename(incoming.name)
    if target.exists() or target.is_symlink():
        raise StoreError(f"{relative(target)} already exists on disk")
    os.rename(incoming.path, target)
    fsync_dir(folder)
    return target


def remove_own_dir(path: Path) -> None:
    """Delete a folder this process created (a temporary or just-published version folder)."""
    shutil.rmtree(path, ignore_errors=True)


def move_dir(source: Path, target: Path) -> None:
    """Atomically move a version folder between stage folders (a rename, never a copy)."""
    if target.exists():
        raise StoreError(f"{relative(target)} already exists on disk")
    make_dirs_durable(target.parent)
    os.rename(source, target)
    fsync_dir(target.parent)
    fsync_dir(source.parent)


def ensure_moved(source: Path, target: Path) -> str:
    """Make `source` be at `target`, idempotently: "moved", or "already" if it was there.

    Raises StoreError when neither or both exist: the move cannot be finished safely.
    """
    if target.exists() and not source.exists():
        return "already"
    if not source.exists():
        raise StoreError(f"{relative(source)} is missing, and so is {relative(target)}")
    if target.exists():
        raise StoreError(f"both {relative(source)} and {relative(target)} exist")
    move_dir(source, target)
    return "moved"


def symlink_inside(folder: Path) -> str | None:
    """The name of a symbolic link in a version folder (which the store never follows)."""
    for entry in os.scandir(folder):
        if entry.is_symlink():
            return entry.name
    return None


def iter_version_dirs() -> Iterator[tuple[str, str, str, Path]]:
    """Every `<stage folder>/<model>/v<version>` on disk: (stage, model, version, path)."""
    base = root()
    for folder, stage in FOLDER_STAGES.items():
        stage_path = base / folder
        if not stage_path.is_dir():
            continue
        for model_path in sorted(stage_path.iterdir()):
            if not model_path.is_dir() or model_path.is_symlink():
                continue
            for version_path in sorted(model_path.iterdir()):
                if version_path.name.startswith("v") and version_path.is_dir():
                    yield stage, model_path.name, version_path.name[1:], version_path
