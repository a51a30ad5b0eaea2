"""A zip of a model directory, uploaded in the admin: checked member by member, then
unpacked into a private folder under the store's `.incoming/` for `plan_directory`.

Nothing is written before every member has passed: no `..` or `.` component, no absolute
path or drive letter, no backslash, no symbolic link, device, FIFO or socket (the Unix mode
in `external_attr`), no encrypted member, no two members with the same name, at most
`IMPORT_ZIP_MAX_MEMBERS` members, each at most `IMPORT_ZIP_MEMBER_MAX_BYTES` and all together
at most `IMPORT_ZIP_MAX_BYTES` as declared. The declared sizes are not trusted: each member
is read with a limit of its declared size, so a zip bomb lying about its sizes stops there.
A refused zip leaves nothing behind (the folder is removed on any failure).

The folder is `.incoming/import-<32 hex>/` (mode 0700): `reconcile` removes one older than
a day (`reconcile.IMPORT_FOLDER_MAX_AGE_SECONDS`: an import neither confirmed nor
cancelled), and no other folder there.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from django.conf import settings

from core.errors import ApplicationError
from registry import store

FOLDER_PREFIX = store.IMPORT_FOLDER_PREFIX
FOLDER_RE = store.IMPORT_FOLDER_RE
MAX_DEPTH = 32
# What macOS's Finder adds to every zip it makes: resource forks, never a model's files.
FINDER_FOLDER = "__MACOSX"
FIELD = "archive"


@dataclass
class Unpacked:
    folder: Path  # the private folder, removed by `folder_remove`
    root: Path  # the directory to plan (the zip's one top folder, or the folder's content)
    members: int
    size: int
    left_out: list[str] = field(default_factory=list)  # members not unpacked (Finder's)

    @property
    def token(self) -> str:
        return self.folder.name[len(FOLDER_PREFIX):]


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(f"the zip was refused: {message}", field=FIELD)


def _mode_problem(info: zipfile.ZipInfo) -> str | None:
    mode = info.external_attr >> 16
    kind = stat.S_IFMT(mode)
    if kind in (0, stat.S_IFREG, stat.S_IFDIR):
        return None
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device file"
    return "is not a plain file or folder (a FIFO or a socket)"


def _name_parts(name: str) -> list[str] | str:
    """The member's path components, or why its name is refused."""
    if "\0" in name:
        return "has a NUL character in its name"
    if "\\" in name:
        return "has a backslash in its name (paths in a zip use '/')"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    parts = [p for p in PurePosixPath(name).parts]
    if any(p in ("..", ".") for p in name.split("/")):
        return "has a '..' or '.' component"
    if not parts:
        return "has an empty name"
    if len(parts) > MAX_DEPTH:
        return f"is nested deeper than {MAX_DEPTH} folders"
    if any(len(p.encode()) > 255 for p in parts):
        return "has a component longer than 255 bytes"
    return parts


def check(archive: zipfile.ZipFile, *, free_bytes: int | None = None) -> list[zipfile.ZipInfo]:
    """Every member that will be unpacked, after checking them all; refuse the zip (an
    ApplicationError on the field `archive`) at the first member that fails."""
    max_members = settings.IMPORT_ZIP_MAX_MEMBERS
    max_total = settings.IMPORT_ZIP_MAX_BYTES
    max_member = settings.IMPORT_ZIP_MEMBER_MAX_BYTES
    members = archive.infolist()
    if len(members) > max_members:
        raise _refuse(f"it has {len(members)} members; at most {max_members} "
                      "(IMPORT_ZIP_MAX_MEMBERS) are accepted")
    kept, seen, total = [], set(), 0
    for info in members:
        name = info.filename
        parts = _name_parts(name)
        if isinstance(parts, str):
            raise _refuse(f"{name!r} {parts}")
        problem = _mode_problem(info)
        if problem:
            raise _refuse(f"{name!r} {problem}")
        if info.flag_bits & 0x1:
            raise _refuse(f"{name!r} is encrypted")
        key = "/".join(parts).lower()
        if key in seen:
            raise _refuse(f"{name!r} appears twice")
        seen.add(key)
        if parts[0] == FINDER_FOLDER:
            continue
        if info.file_size > max_member:
            raise _refuse(f"{name!r} is {info.file_size} bytes unpacked; each member may be at "
                          f"most {max_member} (IMPORT_ZIP_MEMBER_MAX_BYTES)")
        total += info.file_size
        if total > max_total:
            raise _refuse(f"its members add up to more than {max_total} bytes unpacked "
                          "(IMPORT_ZIP_MAX_BYTES)")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED,
                                      zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
            raise _refuse(f"{name!r} uses a compression this server does not read")
        kept.append(info)
    if not any(not info.is_dir() for info in kept):
        raise _refuse("it holds no files")
    if free_bytes is not None and total > free_bytes:
        raise _refuse(f"it unpacks to {total} bytes and the store has {free_bytes} free")
    return kept


def _safe_stem(filename: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(filename or "").stem).strip("_-.")[:64]
    return stem or "upload"


def unpack(upload, *, filename: str) -> Unpacked:
    """Check the zip `upload` (a seekable binary file) and unpack it into a new private
    folder under `.incoming/`. Refuses (ApplicationError, nothing left) a zip that is not one
    or whose members fail `check`."""
    size = getattr(upload, "size", None)
    if size is not None and size > settings.IMPORT_ZIP_MAX_BYTES:
        raise _refuse(f"the file is {size} bytes; at most {settings.IMPORT_ZIP_MAX_BYTES} "
                      "(IMPORT_ZIP_MAX_BYTES)")
    incoming = store.ensure_layout() / store.INCOMING_FOLDER
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise _refuse("it is not a zip file that can be read") from None
    with archive:
        members = check(archive, free_bytes=shutil.disk_usage(incoming).free)
        folder = incoming / f"{FOLDER_PREFIX}{uuid.uuid4().hex}"
        folder.mkdir(mode=0o700)
        try:
            content = folder / _safe_stem(filename)
            content.mkdir(mode=0o700)
            written = 0
            for info in members:
                written += _unpack_member(archive, info, content)
            tops = {PurePosixPath(m.filename).parts[0] for m in members}
            only = content / next(iter(tops)) if len(tops) == 1 else None
            root = only if only is not None and only.is_dir() else content
            left_out = [m.filename for m in archive.infolist()
                        if PurePosixPath(m.filename).parts[:1] == (FINDER_FOLDER,)]
            return Unpacked(folder=folder, root=root, members=len(members), size=written,
                            left_out=left_out)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise


def _unpack_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, content: Path) -> int:
    target = content.joinpath(*PurePosixPath(info.filename).parts)
    # (Every component was checked; this is the defence in depth.)
    if not target.resolve().is_relative_to(content.resolve()):
        raise _refuse(f"{info.filename!r} would land outside the folder")
    try:
        if info.is_dir():
            target.mkdir(mode=0o700, parents=True, exist_ok=True)
            return 0
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        written = 0
        with os.fdopen(fd, "wb") as out, archive.open(info) as source:
            while chunk := source.read(store.CHUNK_SIZE):
                written += len(chunk)
                if written > info.file_size:  # more than it declared: a zip bomb
                    raise _refuse(f"{info.filename!r} unpacks to more than the "
                                  f"{info.file_size} bytes it declares")
                out.write(chunk)
        return written
    except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
        raise _refuse(f"{info.filename!r} cannot be read ({exc})") from None
    except OSError as exc:  # a file where a folder is, a name the file system refuses
        raise _refuse(f"{info.filename!r} cannot be unpacked ({exc.strerror})") from None


def folder_path(token: str) -> Path | None:
    """The private folder of an unpacked upload, by its token (None if gone or not ours)."""
    name = f"{FOLDER_PREFIX}{token}"
    if not FOLDER_RE.fullmatch(name):
        return None
    path = store.root() / store.INCOMING_FOLDER / name
    return path if path.is_dir() and not path.is_symlink() else None


def folder_remove(token: str) -> None:
    path = folder_path(token)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(path)
