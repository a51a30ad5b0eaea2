"""The model card in the admin: the version's page shows its sections and links, "Edit model
card" saves through the service (audited, model_card.md rewritten), the card page and its
PDF; another team sees nothing, a viewer edits nothing.

dana (data scientist) and april (approver) are in `loans`, which owns churn_prediction; sam
(data scientist) is in `growth`; vic (viewer) reads everything.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest

from core.models import AuditEvent
from registry import cards, store
from registry.models import ModelVersion, Team
from tests import helpers
from tests.helpers import Unchanged

CARD = {"intended_use": "Pick members for retention offers."}


@pytest.fixture
def version(data_scientist, approver, other_data_scientist, viewer, churn_model):
    loans = Team.objects.create(name="loans")
    loans.members.add(data_scientist, approver)
    Team.objects.create(name="growth").members.add(other_data_scientist)
    churn_model.team = loans
    churn_model.save(update_fields=["team"])
    for person in (data_scientist, other_data_scientist, viewer):
        person.is_staff = True  # the admin's door
        person.save(update_fields=["is_staff"])
        person.__dict__.pop("_team_ids", None)
    return helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                   meta=helpers.metadata(model_card=CARD))


def _edit_url(version) -> str:
    return f"/admin/registry/modelversion/{version.pk}/card/edit/"


def _form(**sections) -> dict:
    return {key: sections.get(key, "") for key in cards.SECTIONS}


def test_the_version_page_shows_the_card_and_its_links(client, version, data_scientist):
    client.force_login(data_scientist)
    page = client.get(f"/admin/registry/modelversion/{version.pk}/change/").content.decode()
    assert "Pick members for retention offers." in page
    assert _edit_url(version) in page
    assert f"/admin/registry/modelversion/{version.pk}/card/?output=pdf" in page


def test_a_data_scientist_edits_the_card_through_the_service(
        client, version, data_scientist, store_root, django_capture_on_commit_callbacks):
    client.force_login(data_scientist)
    form = client.get(_edit_url(version)).content.decode()
    assert "Pick members for retention offers." in form  # the current text, to edit
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_edit_url(version), _form(
            intended_use="Pick members for retention offers.",
            limitations="New members are under-represented."))
    assert response.status_code == 302
    assert response["Location"] == f"/admin/registry/modelversion/{version.pk}/change/"
    version.refresh_from_db()
    assert version.model_card == {**CARD, "limitations": "New members are under-represented."}
    event = AuditEvent.objects.get(action="version.card_updated")
    assert (event.actor_name, json.loads(event.after)) == (
        "dana", {"limitations": "New members are under-represented."})
    path = Path(store_root) / "experiments/churn_prediction/v1.0.0" / store.CARD_FILENAME
    assert "New members are under-represented." in path.read_text()


def test_a_too_long_section_is_a_form_error_and_nothing_changes(client, version,
                                                                data_scientist):
    client.force_login(data_scientist)
    with Unchanged(allow_actions=()):
        response = client.post(_edit_url(version),
                               _form(limitations="x" * (cards.MAX_SECTION_CHARS + 1)))
    assert response.status_code == 200
    assert f"at most {cards.MAX_SECTION_CHARS} characters" in response.content.decode()


def test_the_services_refusal_comes_back_on_the_form(client, version, data_scientist):
    ModelVersion.objects.filter(pk=version.pk).update(moving_by_deployment=7)
    client.force_login(data_scientist)
    with Unchanged(allow_actions=()):
        response = client.post(_edit_url(version), _form(limitations="later"))
    assert response.status_code == 200
    assert "deployment #7 is moving" in response.content.decode()


def test_a_viewer_reads_the_card_but_cannot_edit_it(client, version, viewer):
    client.force_login(viewer)
    page = client.get(f"/admin/registry/modelversion/{version.pk}/card/")
    assert page.status_code == 200
    assert "Pick members for retention offers." in page.content.decode()
    assert "Edit model card" not in page.content.decode()
    with Unchanged():
        response = client.post(_edit_url(version), _form(limitations="mine"), follow=True)
    assert "may not change this model card" in response.content.decode()


def test_the_card_page_downloads_as_a_pdf_with_the_sections(client, version, approver):
    client.force_login(approver)
    response = client.get(f"/admin/registry/modelversion/{version.pk}/card/?output=pdf")
    assert response["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in
                     pypdf.PdfReader(io.BytesIO(response.content)).pages)
    assert "Intended use" in text and "Pick members for retention offers." in text


def test_another_teams_data_scientist_gets_nothing(client, version, other_data_scientist):
    client.force_login(other_data_scientist)
    with Unchanged(allow_actions=()):
        assert client.get(f"/admin/registry/modelversion/{version.pk}/card/").status_code \
            == 404
        assert client.get(_edit_url(version)).status_code == 404
        assert client.post(_edit_url(version), _form(limitations="ours")).status_code == 404


def test_without_pango_the_card_pdf_says_so_on_the_card_page(client, version, approver,
                                                             pango_missing):
    client.force_login(approver)
    response = client.get(f"/admin/registry/modelversion/{version.pk}/card/?output=pdf")
    assert response.status_code == 200
    assert "libpango-1.0-0" in response.content.decode()
