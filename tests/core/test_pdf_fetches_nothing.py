"""A PDF fetches nothing: a document that names an address or a local file (a model card's
text, a comment) makes the server call no one and embeds no file's content."""

from __future__ import annotations

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pypdf
import pytest

from core.pdf import render_pdf

SECRET = "root-secret-line-4711"
PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5b1e3d40000000049454e44ae426082")


@pytest.fixture
def server():
    """A real HTTP server on loopback that counts every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            body = b"p { color: red }" if self.path.endswith(".css") else PNG_1PX
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def secret_file(tmp_path) -> Path:
    path = tmp_path / "passwd"
    path.write_text(f"{SECRET}\n")
    return path


def _document(base: str, secret: Path) -> str:
    """Every way an HTML document can ask its renderer to fetch something."""
    return f"""<!doctype html><html><head>
    <link rel="stylesheet" href="{base}/style.css">
    <style>@import url("{base}/import.css");
      @font-face {{ font-family: x; src: url("{base}/font.woff"); }}
      body {{ background: url("{base}/background.png"); }}</style>
    <link rel="attachment" href="file://{secret}">
    </head><body>
    <h1>Model card</h1>
    <img src="{base}/x"> <img src="file:///etc/passwd"> <img src="file://{secret}">
    <object data="{base}/object.png"></object> <embed src="file://{secret}">
    <a rel="attachment" href="{base}/attachment.txt">attached</a>
    <a rel="attachment" href="file://{secret}">attached file</a>
    <p>The end.</p></body></html>"""


def _everything_in(content: bytes) -> str:
    """The PDF's text, the names and bytes of its attachments, and its raw bytes."""
    reader = pypdf.PdfReader(io.BytesIO(content))
    parts = [page.extract_text() for page in reader.pages]
    for name, payloads in reader.attachments.items():
        parts.append(name)
        parts.extend(data.decode("latin-1") for data in payloads)
    parts.append(content.decode("latin-1"))
    return "\n".join(parts)


def test_a_pdf_makes_no_request_and_embeds_no_file(server, secret_file):
    base, hits = server
    content = render_pdf(_document(base, secret_file), title="Model card")

    assert hits == []
    everything = _everything_in(content)
    assert "Model card" in everything and "The end." in everything  # it did render
    assert SECRET not in everything
    assert "root:x:0:0" not in everything
    assert pypdf.PdfReader(io.BytesIO(content)).attachments == {}


def test_the_same_document_does_fetch_and_embed_through_weasyprints_defaults(server,
                                                                             secret_file):
    """The check above can fail: WeasyPrint left to itself calls the server and attaches the
    file (this is why core.pdf gives it a fetcher of data: URLs only)."""
    from weasyprint import HTML

    base, hits = server
    content = HTML(string=_document(base, secret_file), base_url=base).write_pdf()
    assert "/x" in hits and "/style.css" in hits
    assert SECRET in _everything_in(content)


def test_inline_data_images_still_render(server):
    from core.pdf import data_uri

    base, hits = server
    html = f'<p>chart</p><img src="{data_uri(PNG_1PX)}">'
    content = render_pdf(html, title="Chart")
    reader = pypdf.PdfReader(io.BytesIO(content))
    assert [image.name for image in reader.pages[0].images]  # the data: image is in the PDF
    assert hits == []
