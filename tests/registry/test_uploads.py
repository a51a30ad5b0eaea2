"""The streaming multipart reader of registrations (registry/uploads.py): malformed bodies,
limits, and delimiters that arrive split across reads."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from registry import uploads
from tests import helpers
from tests.helpers import Unchanged

URL = "/api/v1/models/churn_prediction/versions/"
BOUNDARY = "----modelgovernancetestboundary"


def _post(client, body: bytes, content_type: str = f"multipart/form-data; boundary={BOUNDARY}"):
    return client.post(URL, body, content_type=content_type)


def _body(files=None, **fields) -> bytes:
    fields = {"version": "1.0.0", "framework": "sklearn",
              "metadata": json.dumps(helpers.metadata()), **fields}
    files = files if files is not None else [("file", "model.joblib", helpers.sklearn_bytes())]
    return helpers.raw_multipart(fields, files)[0]


def _refused(response, status: int, field: str):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) >= {"status", "code", "detail", "errors"}
    assert field in body["errors"], body
    return body


def _nothing_incoming(store_root):
    assert list((Path(store_root) / ".incoming").iterdir()) == []


def test_the_reader_body_is_the_one_django_parsed(api, data_scientist, churn_model):
    """The raw body these tests cut up registers as it is."""
    assert _post(api(data_scientist), _body()).status_code == 201


@pytest.mark.parametrize(("keep", "field"), [
    (60, "body"),  # inside the first part's headers
    (len(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"version\"\r\n\r\n1."),
     "version"),  # inside a field's value
    (-600, "file"),  # inside the file
    (-10, "file"),  # inside the closing boundary
])
def test_a_body_cut_before_its_closing_boundary_is_a_400_and_leaves_nothing(
    api, data_scientist, churn_model, store_root, keep, field
):
    with Unchanged():
        response = _post(api(data_scientist), _body()[:keep])
    assert "cut short" in _refused(response, 400, field)["detail"]
    _nothing_incoming(store_root)


def test_a_body_without_the_boundary_its_content_type_names_is_a_400(
    api, data_scientist, churn_model, store_root
):
    body = _body().replace(BOUNDARY.encode(), b"----anotherboundary")
    with Unchanged():
        response = _post(api(data_scientist), body)
    _refused(response, 400, "body")
    _nothing_incoming(store_root)


@pytest.mark.parametrize("boundary", [None, "", "x" * 202, "a\tb"])
def test_a_content_type_without_a_valid_boundary_is_a_400_naming_the_body(
    api, data_scientist, churn_model, boundary
):
    # The body does use the boundary: only the rule on its form refuses it.
    body = _body().replace(BOUNDARY.encode(), (boundary or "").encode())
    content_type = "multipart/form-data" + (f'; boundary="{boundary}"' if boundary is not None
                                            else "")
    with Unchanged():
        response = _post(api(data_scientist), body, content_type)
    _refused(response, 400, "body")


def test_part_headers_that_never_end_are_a_400_naming_the_body(
    api, data_scientist, churn_model, store_root
):
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"model.joblib\"\r\nX-Padding: {'x' * 5000}").encode()
    body += f"\r\n--{BOUNDARY}--\r\n".encode()
    with Unchanged():
        response = _post(api(data_scientist), body)
    _refused(response, 400, "body")
    _nothing_incoming(store_root)


@pytest.mark.parametrize("field", ["version", "framework", "sha256"])
def test_a_form_field_sent_twice_is_a_400_naming_it(api, data_scientist, churn_model, field):
    body, _ = helpers.raw_multipart(
        {"version": "1.0.0", "framework": "sklearn", "sha256": ""},
        [("file", "model.joblib", helpers.sklearn_bytes())])
    second = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\nx\r\n'
    body = second.encode() + body
    with Unchanged():
        response = _post(api(data_scientist), body)
    _refused(response, 400, field)


def test_two_metadata_files_are_a_400_naming_metadata_and_leave_nothing(
    api, data_scientist, churn_model, store_root
):
    metadata = json.dumps(helpers.metadata()).encode()
    fields = {"version": "1.0.0", "framework": "sklearn"}
    files = [("file", "model.joblib", helpers.sklearn_bytes()),
             ("metadata", "a.json", metadata), ("metadata", "b.json", metadata)]
    with Unchanged():
        response = _post(api(data_scientist), helpers.raw_multipart(fields, files)[0])
    _refused(response, 400, "metadata")
    _nothing_incoming(store_root)


def test_an_upload_over_the_limit_is_a_413_naming_the_file_and_leaves_nothing(
    api, data_scientist, churn_model, store_root, settings
):
    body = _body(files=[("file", "model.joblib", b"x" * 100_000)])
    settings.MODEL_MAX_UPLOAD_BYTES = len(body) - 1
    with Unchanged():
        response = _post(api(data_scientist), body)
    _refused(response, 413, "file")
    _nothing_incoming(store_root)


def test_a_form_field_over_the_memory_limit_is_a_413_naming_it(
    api, data_scientist, churn_model, settings
):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = _body(metadata=json.dumps(helpers.metadata(description="x" * 20_000)))
    with Unchanged():
        response = _post(api(data_scientist), body)
    assert _refused(response, 413, "metadata")["code"] == "too_large"


# --- the reader on its own: every way a delimiter can fall across two reads ----------------


class _Collect:
    """A handler that keeps what the reader hands it (the store's handler writes files)."""

    single_parts = frozenset()

    def __init__(self):
        self.parts = []

    def handle_raw_input(self, *args):
        pass

    def new_file(self, name, file_name, *args):
        self.parts.append([name, file_name, b""])

    def receive_data_chunk(self, chunk, start):
        self.parts[-1][2] += bytes(chunk)

    def file_complete(self, size):
        return self.parts[-1][2]


def test_a_delimiter_split_across_reads_is_found_at_every_offset(monkeypatch, settings):
    # File bytes that hold every proper prefix of the delimiter, and one at the very end.
    delimiter = f"\r\n--{BOUNDARY}".encode()
    content = b"".join(delimiter[:n] + b"x" for n in range(1, len(delimiter))) + delimiter[:-1]
    body, content_type = helpers.raw_multipart(
        {"version": "1.0.0"}, [("file", "a.bin", content), ("file", "b.bin", b"\r\n-")])
    for read_size in range(1, len(delimiter) + 3):
        monkeypatch.setattr(uploads, "READ_SIZE", read_size)
        handler = _Collect()
        fields, files = uploads.parse_multipart(
            {"CONTENT_TYPE": content_type, "CONTENT_LENGTH": str(len(body))},
            io.BytesIO(body), handler, "utf-8")
        assert fields["version"] == "1.0.0"
        assert files.getlist("file") == [content, b"\r\n-"], read_size
