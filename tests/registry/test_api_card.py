"""A version's model card over the API: given at registration (the metadata's `model_card`),
read and changed at /api/v1/models/<name>/versions/<version>/card/, kept in the version
folder as model_card.md.

dana (data scientist) and april (approver) are in `loans`, which owns churn_prediction; sam
(data scientist) is in `growth`; vic (viewer) reads everything; olly holds no role.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import roles
from core.models import AuditEvent
from registry import cards, services, store
from registry.importing.files import store_name
from registry.models import ModelVersion, Team
from tests import helpers
from tests.conftest import _person
from tests.helpers import Unchanged, register, upload

URL = "/api/v1/models/churn_prediction/versions/1.0.0/card/"
CARD = {"intended_use": "Pick members for retention offers.",
        "limitations": "New members are under-represented."}


@pytest.fixture
def loans(data_scientist, approver, other_data_scientist, churn_model):
    team = Team.objects.create(name="loans")
    team.members.add(data_scientist, approver)
    Team.objects.create(name="growth").members.add(other_data_scientist)
    churn_model.team = team
    churn_model.save(update_fields=["team"])
    for person in (data_scientist, approver, other_data_scientist):
        person.__dict__.pop("_team_ids", None)  # cached by the model's creation
    return team


@pytest.fixture
def version(loans, data_scientist):
    return helpers.register_direct("churn_prediction", "1.0.0", actor=data_scientist,
                                   meta=helpers.metadata(model_card=CARD))


def _card_file(store_root) -> Path:
    return Path(store_root) / "experiments/churn_prediction/v1.0.0" / store.CARD_FILENAME


# --- registration ---------------------------------------------------------------------------


def test_a_registration_keeps_its_card_on_the_row_and_in_model_card_md(
        api, data_scientist, churn_model, store_root):
    response = register(api(data_scientist), "churn_prediction",
                        meta=helpers.metadata(model_card={**CARD, "training_data": "  "}))
    assert response.status_code == 201, response.json()
    row = ModelVersion.objects.get(version="1.0.0")
    assert row.model_card == CARD  # a blank section is no section
    assert "model_card" not in row.extra_metadata
    text = _card_file(store_root).read_text()
    assert text.startswith(cards.CARD_MARK)
    assert "## Intended use\n\nPick members for retention offers." in text
    assert "## Training data\n\n_Not stated._" in text


@pytest.mark.parametrize(("card", "field", "words"), [
    ({"intended_use": "ok", "favourite_colour": "blue"}, "metadata.model_card.favourite_colour",
     "not a model card section"),
    ({"limitations": 3}, "metadata.model_card.limitations", "a text (string)"),
    ({"limitations": "x" * (cards.MAX_SECTION_CHARS + 1)}, "metadata.model_card.limitations",
     f"at most {cards.MAX_SECTION_CHARS} characters"),
    (["intended_use"], "metadata.model_card", "an object with the sections"),
])
def test_a_registration_with_a_bad_card_is_a_422_naming_the_section_and_writes_nothing(
        api, data_scientist, churn_model, card, field, words):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction",
                            meta=helpers.metadata(model_card=card))
    assert response.status_code == 422, response.json()
    assert words in response.json()["errors"][field][0]


def test_a_file_named_model_card_md_cannot_be_uploaded(api, data_scientist, churn_model):
    with Unchanged():
        response = register(api(data_scientist), "churn_prediction",
                            files=[upload("model.joblib", helpers.sklearn_bytes()),
                                   upload("model_card.md", b"# mine\n")])
    assert response.status_code == 400, response.json()
    assert "written by the registry" in response.json()["errors"]["file"][0]


def test_an_imported_model_card_md_is_renamed_source_model_card_md():
    assert store_name(Path("team/v1/model_card.md"), set()) == "source_model_card.md"
    assert store_name(Path("team/v1/Model_Card.md"), set()) == "source_Model_Card.md"


# --- reading ---------------------------------------------------------------------------------


def test_the_team_and_a_viewer_read_the_card_as_json(api, version, data_scientist, viewer):
    for person in (data_scientist, viewer):
        with Unchanged(allow_actions=()):
            response = api(person).get(URL)
        assert response.status_code == 200, response.json()
        body = response.json()
        assert [s["key"] for s in body["sections"]] == list(cards.SECTIONS)
        assert {s["key"]: s["text"] for s in body["sections"] if s["text"]} == CARD
        assert body["owners"]["team"] == "loans"
        assert body["owners"]["owner"]["username"] == "dana"
        assert {r["name"]: r["claimed"] for r in body["metrics"]["rows"]} == {
            "accuracy": 0.82, "f1_score": 0.79}


def test_who_may_not_see_the_model_gets_a_404_for_reading_and_changing(
        api, version, other_data_scientist, outsider, django_user_model):
    robot = _person(django_user_model, "scorer", roles.SERVICE)
    for person in (other_data_scientist, outsider, robot):
        with Unchanged():
            assert api(person).get(URL).status_code == 404
            response = api(person).patch(URL, {"limitations": "none"}, format="json")
        assert response.status_code == 404, (person, response.json())
    assert api().get(URL).status_code == 401


def test_an_unknown_output_is_a_400_naming_output(api, version, viewer):
    response = api(viewer).get(URL + "?output=docx")
    assert response.status_code == 400
    assert "output" in response.json()["errors"]


# --- changing --------------------------------------------------------------------------------


def test_a_data_scientist_changes_sections_audited_with_old_and_new_and_the_file_follows(
        api, version, data_scientist, store_root, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(data_scientist).patch(
            URL, {"limitations": "Scores drift in December.", "intended_use": "",
                  "ethical_considerations": "Offers only; never fees."}, format="json")
    assert response.status_code == 200, response.json()
    version.refresh_from_db()
    assert version.model_card == {"limitations": "Scores drift in December.",
                                  "ethical_considerations": "Offers only; never fees."}
    event = AuditEvent.objects.filter(action="version.card_updated").get()
    assert event.actor_name == "dana"
    assert json.loads(event.before) == {"intended_use": CARD["intended_use"],
                                        "limitations": CARD["limitations"],
                                        "ethical_considerations": ""}
    assert json.loads(event.after) == {"intended_use": "",
                                       "limitations": "Scores drift in December.",
                                       "ethical_considerations": "Offers only; never fees."}
    text = _card_file(store_root).read_text()
    assert text == cards.card_file_text(version)
    assert "Scores drift in December." in text and "Pick members" not in text


def test_the_teams_approver_may_change_the_card_and_the_same_card_again_writes_nothing(
        api, version, approver):
    response = api(approver).patch(URL, {"limitations": "Checked by april."}, format="json")
    assert response.status_code == 200, response.json()
    with Unchanged(allow_actions=()):
        response = api(approver).patch(URL, {"limitations": "Checked by april."},
                                       format="json")
    assert response.status_code == 200


def test_a_viewer_may_read_but_not_change_the_card(api, version, viewer):
    with Unchanged():
        response = api(viewer).patch(URL, {"limitations": "none"}, format="json")
    assert response.status_code == 403, response.json()
    assert AuditEvent.objects.filter(action="permission.denied", actor_name="vic").exists()


@pytest.mark.parametrize(("body", "field"), [
    ({"limitations": "fine", "risk": "low"}, "risk"),
    ({"limitations": ["a", "list"]}, "limitations"),
    ({"limitations": "x" * (cards.MAX_SECTION_CHARS + 1)}, "limitations"),
    (["limitations"], "model_card"),
])
def test_a_bad_change_is_a_422_naming_the_section_and_changes_nothing(
        api, version, data_scientist, body, field):
    with Unchanged():
        response = api(data_scientist).patch(URL, body, format="json")
    assert response.status_code == 422, response.json()
    assert field in response.json()["errors"]


def test_a_change_while_a_deployment_moves_the_folder_is_a_409(api, version, data_scientist):
    ModelVersion.objects.filter(pk=version.pk).update(moving_by_deployment=99)
    with Unchanged():
        response = api(data_scientist).patch(URL, {"limitations": "later"}, format="json")
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "busy"


def test_the_service_refuses_a_data_scientist_of_another_team(version, other_data_scientist):
    from core.errors import Forbidden

    with Unchanged(), pytest.raises(Forbidden):
        services.version_card_update(version=version, actor=other_data_scientist,
                                     sections={"limitations": "theirs"})
