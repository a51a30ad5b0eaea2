"""PDF documents: the HTML views' own templates, rendered by WeasyPrint.

One renderer for every export (audit report, trace, model card, inventory), so a PDF says
what its HTML view says. Each page carries the document's title, its generation time and
"page N of M". WeasyPrint fetches nothing: images come inline as `data:` URIs (see
`data_uri`), and any other URL in a document is refused, so a document that names an
address (a model card's text, say) cannot make the server call it.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import datetime

from django.http import HttpResponse
from django.utils import timezone

from core.errors import ApplicationError

logger = logging.getLogger(__name__)

PDF_CONTENT_TYPE = "application/pdf"

# What WeasyPrint needs from the operating system (Debian's names): Pango, its FreeType
# backend and one font. .ci/run installs them and the README names them; keep the three in step.
SYSTEM_PACKAGES = ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core")


class PdfUnavailable(ApplicationError):
    """The server cannot make PDFs: WeasyPrint's system libraries are missing. A 503 naming
    the packages to install, never a 500; the HTML and CSV exports still work."""

    status_code = 503
    default_code = "pdf_unavailable"

    def __init__(self):
        super().__init__(
            "PDF export is unavailable on this server: the system libraries it needs are "
            f"missing (install {' '.join(SYSTEM_PACKAGES)}); the HTML and CSV exports work.",
            extra={"missing_system_packages": list(SYSTEM_PACKAGES)},
        )


def _fetcher():
    from weasyprint.urls import URLFetcher

    # data: only; anything else (http, file, ftp) is refused and the image left out.
    return URLFetcher(allowed_protocols={"data"}, allow_redirects=False)


def _css_string(text: str) -> str:
    return '"' + re.sub(r'["\\\n\r]', " ", text) + '"'


def _page_css(title: str, generated_at: datetime) -> str:
    stamp = f"Generated {timezone.localtime(generated_at):%Y-%m-%d %H:%M:%S %Z}"
    return f"""
    @page {{
        size: A4; margin: 16mm 14mm 18mm 14mm;
        @top-left {{ content: {_css_string(title[:120])}; font: 8pt sans-serif; color: #555; }}
        @bottom-left {{ content: {_css_string(stamp)}; font: 8pt sans-serif; color: #555; }}
        @bottom-right {{ content: "Page " counter(page) " of " counter(pages);
                         font: 8pt sans-serif; color: #555; }}
    }}
    body {{ margin: 0 !important; max-width: none !important; font-size: 10pt; }}
    table {{ page-break-inside: auto; }} tr {{ page-break-inside: avoid; }}
    code {{ word-break: break-all; }}
    nav, form, .no-print {{ display: none !important; }}
    """


def render_pdf(html: str, *, title: str, generated_at: datetime | None = None) -> bytes:
    """The HTML document as PDF bytes, with title, generation time and page numbers on
    every page. Raises PdfUnavailable when WeasyPrint cannot load Pango."""
    try:
        from weasyprint import CSS, HTML
    except OSError as exc:  # cffi's dlopen of Pango failed while importing WeasyPrint
        logger.error("PDF export unavailable: %s", exc)
        raise PdfUnavailable() from exc

    generated_at = generated_at or timezone.now()
    document = HTML(string=html, url_fetcher=_fetcher(), base_url="about:blank")
    return document.write_pdf(stylesheets=[CSS(string=_page_css(title, generated_at))])


def pdf_response(html: str, *, title: str, filename: str,
                 generated_at: datetime | None = None) -> HttpResponse:
    response = HttpResponse(render_pdf(html, title=title, generated_at=generated_at),
                            content_type=PDF_CONTENT_TYPE)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename) or "document.pdf"
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


def data_uri(data: bytes, content_type: str = "image/png") -> str:
    """An image inlined for HTML and PDF alike (the PDF renderer fetches no URL)."""
    return f"data:{content_type};base64,{base64.b64encode(data).decode('ascii')}"
