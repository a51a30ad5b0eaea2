"""A version's model card document: its sections with owners, claimed and measured metrics
and the evaluation images, approvals, deployments and monitoring, as JSON, HTML, Markdown and
PDF (the PDF says what the HTML shows)."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pypdf
import pytest

from compliance import cards
from registry import services, store
from registry.models import ArtifactFile, FileRole, ModelVersion
from tests import helpers
from tests.compliance.conftest import APPROVAL_COMMENT
from tests.helpers import Unchanged

pytestmark = pytest.mark.django_db(transaction=True)  # the trace fixture deploys for real

URL = "/api/v1/models/churn_prediction/versions/1.0.0/card/"
CARD = {
    "intended_use": "Choose members for retention offers.",
    "out_of_scope_uses": "Closing memberships or changing fees.",
    "training_data": "Synthetic visit and loan history of 4,000 members.",
    "evaluation_data": "A held-out quarter (1,000 members) with the churned label.",
    "limitations": "New members (under 3 months) are under-represented.",
    "ethical_considerations": "Offers go to those scored at risk; nobody loses a service.",
}


def _png() -> bytes:
    """A 2x2 grey PNG, as an evaluation's confusion matrix would be (smaller)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    rows = b"".join(b"\x00" + b"\x80\x80" for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.fixture
def carded(traced, data_scientist, store_root):
    """churn_prediction 1.0.0 in production (requested by dana, approved by april), with a
    full card, measured metrics and a confusion matrix image."""
    chain = traced()
    version = ModelVersion.objects.get(pk=chain["version"].pk)
    services.version_card_update(version=version, actor=data_scientist, sections=CARD)
    # What validation's measured evaluation records (another part of this issue), set here.
    image = _png()
    folder = store.locate_version_dir("churn_prediction", "1.0.0", version.stage)
    (Path(folder) / "confusion_matrix.png").write_bytes(image)
    ArtifactFile.objects.create(version=version, role=FileRole.EVALUATION,
                                filename="confusion_matrix.png", position=50,
                                size=len(image), sha256=helpers.sha256(image))
    ModelVersion.objects.filter(pk=version.pk).update(
        evaluation={"metrics": {"accuracy": 0.7731, "f1_score": 0.6612}, "n_rows": 200})
    return version


def _pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(content)).pages)


def _flat(text: str) -> str:
    return " ".join(text.split())  # PDF lines wrap where HTML does not


def test_the_card_as_json_has_sections_owners_metrics_approvals_and_deployments(
        api, viewer, carded):
    with Unchanged(allow_actions=()):
        response = api(viewer).get(URL)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert {s["key"]: s["text"] for s in body["sections"]} == CARD
    assert body["owners"]["owner"]["username"] == "dana"
    assert {row["name"]: (row["claimed"], row["measured"]) for row in body["metrics"]["rows"]} \
        == {"accuracy": (0.82, 0.7731), "f1_score": (0.79, 0.6612)}
    assert [(i["filename"], i["note"]) for i in body["images"]] == [("confusion_matrix.png", "")]
    assert "data_uri" not in body["images"][0]
    [request] = body["approvals"]
    assert (request["to_stage"], request["requested_by"]["username"]) == ("production", "dana")
    assert [(d["approver"]["username"], d["comment"]) for d in request["decisions"]] == [
        ("april", APPROVAL_COMMENT)]
    assert [(d["from_stage"], d["to_stage"], d["status"]) for d in body["deployments"]] == [
        ("experiment", "staging", "completed"), ("staging", "production", "completed")]
    assert body["monitoring"] == {"last_run": None, "open_alerts": []}


def test_html_markdown_and_pdf_each_carry_the_sections_and_the_chain(api, viewer, carded):
    client = api(viewer)
    html = client.get(URL + "?output=html")
    assert html["Content-Type"].startswith("text/html")
    markdown = client.get(URL + "?output=md")
    assert markdown["Content-Type"].startswith("text/markdown")
    pdf = client.get(URL + "?output=pdf")
    assert pdf["Content-Type"] == "application/pdf"
    assert "model-card-churn_prediction-1.0.0.pdf" in pdf["Content-Disposition"]

    html_text, md_text = html.content.decode(), markdown.content.decode()
    pdf_text = _flat(_pdf_text(pdf.content))
    assert "data:image/png;base64," in html_text  # the image inline, for the PDF too
    for text in (html_text, md_text, pdf_text):
        for key, section in CARD.items():
            title = {"out_of_scope_uses": "Out-of-scope uses"}.get(
                key, key.replace("_", " ").capitalize())
            assert title in text, (title, text[:300])
            assert section.replace("'", "&#x27;") in text or section in _flat(text), key
        assert "0.7731" in text and "0.82" in text  # measured beside claimed
        assert "confusion_matrix.png" in text
        assert "april" in text and "Checked the November backtest" in _flat(text)
        assert "staging → production" in text
    assert "Page 1 of" in pdf_text


def test_a_missing_or_changed_image_is_named_not_shown(api, viewer, carded, store_root):
    folder = store.locate_version_dir("churn_prediction", "1.0.0", "production")
    (Path(folder) / "confusion_matrix.png").write_bytes(b"not the registered image")
    body = api(viewer).get(URL).json()
    assert body["images"][0]["note"].startswith("not shown")
    assert "data:image/png" not in cards.card_html(cards.card_document(carded))


def test_a_card_the_policy_requires_more_of_names_what_is_missing(api, viewer, traced):
    from governance.models import Policy

    traced()
    Policy.objects.filter(model__isnull=True, risk_tier="").update(
        required_card_sections=["intended_use", "limitations"])
    body = api(viewer).get(URL).json()
    assert body["missing_required_sections"] == ["intended_use", "limitations"]
    assert "Sections the policy requires before production and this card lacks" in \
        api(viewer).get(URL + "?output=html").content.decode()
