"""Receiving a multipart registration straight into the store, hashing on the way in.

Django's default handlers keep small files in memory and large ones in /tmp, and Django
silently strips a file name like `../../config/settings.py` down to `settings.py`. For model
uploads we want neither: each file part is written chunk by chunk into the store's
`.incoming/` folder (same file system as its final place, so placing it is a rename), its
sha256 and size computed from the same chunks, the request refused with 413 as soon as it
passes the size limit, and a file name that is not a plain name refused rather than rewritten.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
from types import MethodType

from django.conf import settings
from django.core.exceptions import TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadhandler import FileUploadHandler
from django.http import QueryDict
from django.http.multipartparser import MAX_TOTAL_HEADER_SIZE
from django.utils.datastructures import MultiValueDict
from django.utils.encoding import force_str
from django.utils.http import parse_header_parameters
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.errors import ApplicationError, PayloadTooLarge
from registry import store

# Small parts read into memory rather than the store (e.g. `metadata` sent with curl -F @file).
MEMORY_PARTS = {"metadata": 1024 * 1024}


class ReceivedFile:
    """What `request.FILES` holds for a part written into `.incoming/`."""

    def __init__(self, incoming: store.IncomingFile, field_name: str):
        self.incoming = incoming
        self.field_name = field_name
        self.name = incoming.name
        self.size = incoming.size

    def close(self) -> None:
        # Cleanup belongs to the view (see `discard_unplaced`); a placed file must survive.
        pass


class MemoryPart:
    def __init__(self, data: bytes, name: str):
        self.data = data
        self.name = name
        self.size = len(data)

    def read(self) -> bytes:
        return self.data

    def close(self) -> None:
        pass


class StoreUploadHandler(FileUploadHandler):
    """Where `parse_multipart` sends file parts: into `.incoming/`, or memory for MEMORY_PARTS."""

    def __init__(self, request, file_fields: frozenset[str],
                 single_parts: frozenset[str] = frozenset()):
        super().__init__(request)
        self.file_fields = file_fields
        # Parts a request sends at most once (a second `version` or `metadata` is refused).
        self.single_parts = single_parts
        self.limit = settings.MODEL_MAX_UPLOAD_BYTES
        self.received = 0
        self.writer: store.HashingWriter | None = None
        self.memory: list[bytes] | None = None
        # Every file this handler creates, so that the view can remove what it did not place.
        self.created: list[os.PathLike] = []
        request._store_upload_handler = self

    def _too_large(self):
        return PayloadTooLarge(
            f"the request is larger than the limit of {self.limit} bytes "
            "(MODEL_MAX_UPLOAD_BYTES)",
            field="file",
        )

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit:
            raise self._too_large()  # before reading a byte of the body
        return None

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if field_name in MEMORY_PARTS:
            self.memory = []
            return
        if field_name not in self.file_fields:
            raise ApplicationError(
                f"unexpected file part; send files as {' or '.join(sorted(self.file_fields))}",
                field=field_name,
            )
        try:
            store.validate_filename(file_name)
        except store.UnsafeName as exc:
            raise ApplicationError(f"{file_name!r}: {exc}", field=field_name) from None
        self.writer = store.HashingWriter()
        self.created.append(self.writer.path)

    def receive_data_chunk(self, raw_data, start):
        # The reader reads at most Content-Length bytes, which handle_raw_input has checked;
        # counting here too keeps the bound if that ever changes.
        self.received += len(raw_data)
        if self.received > self.limit:
            raise self._too_large()
        if self.memory is not None:
            if sum(map(len, self.memory)) + len(raw_data) > MEMORY_PARTS[self.field_name]:
                raise PayloadTooLarge(
                    f"at most {MEMORY_PARTS[self.field_name]} bytes", field=self.field_name
                )
            self.memory.append(bytes(raw_data))
        else:
            self.writer.write(raw_data)
        return None

    def file_complete(self, file_size):
        if self.memory is not None:
            part = MemoryPart(b"".join(self.memory), self.file_name)
            self.memory = None
            return part
        incoming = self.writer.finish(name=self.file_name, role="")
        self.writer = None
        return ReceivedFile(incoming, self.field_name)

    def upload_interrupted(self):
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


# --- the multipart reader ---------------------------------------------------------------------
#
# Django's MultiPartParser spent ~0.25 s of a 100 MB registration's 0.37 s re-buffering the
# stream around its boundary search (bench/README.md). This reader reads 4 MB at a time,
# finds delimiters with `bytes.find` (C) and hands each part's bytes on as memoryviews of the
# chunk it read: the body is copied only by the WSGI server, the hash and the file write.
# Part headers are parsed by Django's own `parse_header_parameters`, line by line as Django
# does, so names and file names mean exactly what they meant (streaming-form-data, measured
# as fast, cut `filename="model.pkl\n"` down to `model.pkl` instead of letting it be refused).

READ_SIZE = 4 * 1024 * 1024
BOUNDARY_RE = re.compile(r"[ -~]{0,200}[!-~]")  # Django's rule for a boundary
SKIP, FIELD, FILE = "skip", "field", "file"


class MalformedBody(ApplicationError):
    """The body is not the multipart/form-data its Content-Type says."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message, field=field or "body", code="malformed_multipart")


class MultipartReader:
    """The parts of one multipart body, read forwards once, in bounded memory."""

    def __init__(self, stream, boundary: bytes, content_length: int):
        self.stream = stream
        self.remaining = content_length
        self.delimiter = b"\r\n--" + boundary
        # The first boundary has no CRLF before it; pretending it has makes every one alike.
        self.buffer = b"\r\n"
        self.pos = 0

    def _fill(self) -> bool:
        """Add the next chunk of the body to what is unread; False at its end."""
        if self.remaining <= 0:
            return False
        chunk = self.stream.read(min(READ_SIZE, self.remaining))
        if not chunk:
            self.remaining = 0
            return False
        self.remaining -= len(chunk)
        rest = self.buffer[self.pos:] if self.pos < len(self.buffer) else b""
        # `rest` is a few bytes at most while a part's body streams (see `body`).
        self.buffer = rest + chunk if rest else chunk
        self.pos = 0
        return True

    def _need(self, count: int) -> bool:
        while len(self.buffer) - self.pos < count:
            if not self._fill():
                return False
        return True

    def body(self, part: str | None):
        """Yield the current part's bytes (memoryviews) up to the next delimiter, and step
        over that delimiter."""
        delimiter = self.delimiter
        while True:
            buffer, pos = self.buffer, self.pos
            found = buffer.find(delimiter, pos)
            if found >= 0:
                if found > pos:
                    yield memoryview(buffer)[pos:found]
                self.pos = found + len(delimiter)
                return
            # Keep back only an end that could be the start of a delimiter.
            cut = len(buffer) - _delimiter_prefix_at_end(buffer, delimiter, pos)
            if cut > pos:
                yield memoryview(buffer)[pos:cut]
                self.pos = cut
            if not self._fill():
                raise MalformedBody("the body ended before the closing boundary: it was cut "
                                    "short", field=part)

    def next_part(self) -> bool:
        """After a delimiter: True if a part follows, False after the closing one."""
        if not self._need(2):
            raise MalformedBody("the body was cut short after a boundary")
        if self.buffer.startswith(b"--", self.pos):
            return False
        while self.buffer.startswith((b" ", b"\t"), self.pos):  # RFC 2046 transport padding
            self.pos += 1
            if not self._need(2):
                raise MalformedBody("the body was cut short inside a boundary line")
        if not self.buffer.startswith(b"\r\n", self.pos):
            raise MalformedBody("a boundary line is followed by more than a line break")
        self.pos += 2
        return True

    def headers(self) -> dict:
        """The part's headers, parsed as Django parses them: {name: (value, params)}."""
        while True:
            if self.buffer.startswith(b"\r\n", self.pos):  # a part without headers
                self.pos += 2
                return {}
            end = self.buffer.find(b"\r\n\r\n", self.pos)
            if end >= 0 and end - self.pos <= MAX_TOTAL_HEADER_SIZE:
                block = self.buffer[self.pos:end]
                self.pos = end + 4
                break
            if len(self.buffer) - self.pos > MAX_TOTAL_HEADER_SIZE:
                raise MalformedBody(f"a part's headers are longer than {MAX_TOTAL_HEADER_SIZE} "
                                    "bytes or never end")
            if not self._fill():
                raise MalformedBody("the body was cut short inside a part's headers")
        found = {}
        for line in block.split(b"\r\n"):
            try:
                main_value_pair, params = parse_header_parameters(line.decode())
                name, value = main_value_pair.split(":", 1)
            except ValueError:  # not a header line: skipped, as Django skips it
                continue
            found[name] = (value.strip(), params)
        return found

    def drain(self) -> None:
        """Read (and drop) the epilogue, so that the connection can carry the next request."""
        while self.remaining > 0:
            chunk = self.stream.read(min(READ_SIZE, self.remaining))
            if not chunk:
                break
            self.remaining -= len(chunk)


def _delimiter_prefix_at_end(buffer: bytes, delimiter: bytes, pos: int) -> int:
    """How many bytes at the end of `buffer` could begin a delimiter split across reads."""
    at = buffer.find(b"\r", max(pos, len(buffer) - len(delimiter) + 1))
    while at >= 0:
        if delimiter.startswith(buffer[at:]):
            return len(buffer) - at
        at = buffer.find(b"\r", at + 1)
    return 0


def parse_multipart(meta, stream, handler: StoreUploadHandler, encoding: str):
    """Parse a multipart/form-data body into (QueryDict of fields, MultiValueDict of files),
    file parts streamed through `handler`. A malformed body is a 400 naming the part at
    fault (or `body`); nothing it received is kept (see `discard_unplaced`)."""
    content_type = meta.get("CONTENT_TYPE", "")
    try:
        content_type.encode("ascii")
        media_type, options = parse_header_parameters(content_type)
    except (UnicodeEncodeError, ValueError):
        raise MalformedBody("the Content-Type header is not ASCII") from None
    boundary = options.get("boundary")
    if media_type != "multipart/form-data" or not boundary or \
            not BOUNDARY_RE.fullmatch(boundary):
        raise MalformedBody("the Content-Type must be multipart/form-data with a boundary "
                            "of 1-201 printable ASCII characters")
    try:
        content_length = int(meta.get("CONTENT_LENGTH") or 0)
    except ValueError:
        content_length = 0
    fields, files = QueryDict(mutable=True), MultiValueDict()
    if content_length <= 0:
        return fields, files
    handler.handle_raw_input(stream, meta, content_length, boundary, encoding)

    reader = MultipartReader(stream, boundary.encode("ascii"), content_length)
    for _ in reader.body(None):  # a preamble before the first boundary is ignored
        pass
    field_bytes = field_count = file_count = 0
    seen: set[str] = set()
    while reader.next_part():
        headers = reader.headers()
        kind, name, file_name = _part_kind(headers, encoding)
        if kind != SKIP:
            if name in handler.single_parts and name in seen:
                raise ApplicationError("sent more than once: a request sends one", field=name)
            seen.add(name)
            transfer = headers.get("content-transfer-encoding", ("",))[0].lower()
            if transfer not in ("", "7bit", "8bit", "binary"):
                raise ApplicationError(f"Content-Transfer-Encoding {transfer!r} is not "
                                       "supported: send the bytes as they are", field=name)
        if kind == FIELD:
            field_count += 1
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
            if limit is not None and field_count > limit:
                raise TooManyFieldsSent("The number of GET/POST parameters exceeded "
                                        "settings.DATA_UPLOAD_MAX_NUMBER_FIELDS.")
            field_bytes += len(name) + 2
            value = []
            for chunk in reader.body(name):
                field_bytes += len(chunk)
                if settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None and \
                        field_bytes > settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                    raise PayloadTooLarge(
                        "the form fields are larger than DATA_UPLOAD_MAX_MEMORY_SIZE "
                        f"({settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes)", field=name)
                value.append(bytes(chunk))
            fields.appendlist(name, b"".join(value).decode(encoding, "replace"))
        elif kind == FILE:
            file_count += 1
            limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
            if limit is not None and file_count > limit:
                raise TooManyFilesSent("The number of files exceeded "
                                       "settings.DATA_UPLOAD_MAX_NUMBER_FILES.")
            handler.new_file(name, file_name, None, None)
            size = 0
            for chunk in reader.body(name):
                handler.receive_data_chunk(chunk, size)
                size += len(chunk)
            files.appendlist(name, handler.file_complete(size))
        else:
            for _ in reader.body(None):
                pass
    reader.drain()
    fields._mutable = False
    return fields, files


def _part_kind(headers: dict, encoding: str) -> tuple[str, str, str | None]:
    """(kind, field name, file name) of a part, decided as Django decides: no
    Content-Disposition name, or an empty file name, and the part is skipped."""
    disposition = headers.get("content-disposition")
    if disposition is None or "name" not in disposition[1]:
        return SKIP, "", None
    params = disposition[1]
    name = force_str(params["name"], encoding, errors="replace").strip()
    if "filename" not in params or not params["filename"]:
        return FIELD, name, None
    # The name as sent (HTML entities decoded, as Django does), so that an unsafe one can be
    # refused by name rather than rewritten.
    file_name = html.unescape(force_str(params["filename"], encoding, errors="replace"))
    return (FILE, name, file_name) if file_name else (SKIP, "", None)


class StoreMultiPartParser(parsers.BaseParser):
    """DRF's parser for multipart/form-data, through `parse_multipart` into the store."""

    media_type = "multipart/form-data"

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        django_request = parser_context["request"]._request
        handler = getattr(django_request, "_store_upload_handler", None)
        if handler is None:  # only the views that install a handler take uploads
            raise ParseError("this endpoint takes no multipart body")
        meta = django_request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        return parsers.DataAndFiles(*parse_multipart(meta, stream, handler, encoding))


def _parse_file_upload(self, META, post_data):
    return parse_multipart(META, post_data, self._store_upload_handler, self.encoding or
                           settings.DEFAULT_CHARSET)


def install(django_request, file_fields: frozenset[str],
            single_parts: frozenset[str] = frozenset()) -> None:
    """Route this request's multipart body into the store.

    Must run before anything reads the body: DRF's CSRF check for session-authenticated
    requests reads `request.POST`, which parses through Django's own path, hence both hooks.
    """
    StoreUploadHandler(django_request, file_fields, single_parts)
    django_request.parse_file_upload = MethodType(_parse_file_upload, django_request)


def discard_unplaced(django_request) -> None:
    """Remove every file received for this request that was not renamed into a version.

    Django tells a handler that an upload was cut short only for StopUpload; a client that
    disconnects, a full disk or a malformed part leaves the current writer open, with its
    thread and file handle, until it is aborted here.
    """
    handler = getattr(django_request, "_store_upload_handler", None)
    if handler is None:
        return
    handler.upload_interrupted()
    for path in handler.created:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
