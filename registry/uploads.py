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
from types import MethodType

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.http.multipartparser import MultiPartParser as DjangoMultiPartParser
from django.http.multipartparser import MultiPartParserError
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
    # Django's parser hands over this much per call; bigger chunks, fewer Python round trips.
    chunk_size = 4 * 1024 * 1024

    def __init__(self, request, file_fields: frozenset[str]):
        super().__init__(request)
        self.file_fields = file_fields
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
        # Django reads at most Content-Length bytes, which handle_raw_input has checked;
        # counting here too keeps the bound if that ever changes.
        self.received += len(raw_data)
        if self.received > self.limit:
            raise self._too_large()
        if self.memory is not None:
            if sum(map(len, self.memory)) + len(raw_data) > MEMORY_PARTS[self.field_name]:
                raise PayloadTooLarge(
                    f"at most {MEMORY_PARTS[self.field_name]} bytes", field=self.field_name
                )
            self.memory.append(raw_data)
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


class RawNameMultiPartParser(DjangoMultiPartParser):
    """Keeps a part's file name as sent, so that an unsafe one can be refused by name."""

    def sanitize_file_name(self, file_name):
        file_name = html.unescape(file_name)
        return file_name or None


class StoreMultiPartParser(parsers.MultiPartParser):
    """DRF's multipart parser, on top of `RawNameMultiPartParser`."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        request = parser_context["request"]
        meta = request.META.copy()
        meta["CONTENT_TYPE"] = media_type
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            parser = RawNameMultiPartParser(meta, stream, request.upload_handlers, encoding)
            data, files = parser.parse()
        except MultiPartParserError as exc:
            raise ParseError(f"Multipart form parse error - {exc}") from None
        return parsers.DataAndFiles(data, files)


def _parse_file_upload(self, META, post_data):
    self.upload_handlers = list(self.upload_handlers)
    return RawNameMultiPartParser(META, post_data, self.upload_handlers, self.encoding).parse()


def install(django_request, file_fields: frozenset[str]) -> None:
    """Route this request's multipart body into the store.

    Must run before anything reads the body: DRF's CSRF check for session-authenticated
    requests reads `request.POST`, which parses through Django's own path, hence both hooks.
    """
    django_request.upload_handlers = [StoreUploadHandler(django_request, file_fields)]
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
