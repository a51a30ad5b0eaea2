"""JWTs have their own signing key; a new password or a deactivation ends every session."""

from __future__ import annotations

from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.tokens import RefreshToken

from tests import helpers

MODELS = "/api/v1/models/"


def login(username: str, password: str = helpers.PASSWORD) -> dict:
    response = APIClient().post("/api/v1/auth/token/", {"username": username,
                                                        "password": password}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def refresh(tokens: dict):
    return APIClient().post("/api/v1/auth/token/refresh/", {"refresh": tokens["refresh"]},
                            format="json")


def test_jwts_are_signed_with_their_own_key_not_the_secret_key(viewer):
    assert settings.SIMPLE_JWT["SIGNING_KEY"] not in ("", settings.SECRET_KEY)
    claims = RefreshToken.for_user(viewer).access_token.payload

    def signed_with(key):
        return bearer(TokenBackend("HS256", key).encode(claims))

    assert signed_with(settings.SIMPLE_JWT["SIGNING_KEY"]).get(MODELS).status_code == 200
    forged = signed_with(settings.SECRET_KEY).get(MODELS)
    assert forged.status_code == 401
    assert forged.json() == {"status": 401, "code": "token_not_valid", "errors": {},
                             "detail": "Given token not valid for any token type"}


def test_a_new_password_ends_refresh_and_access_tokens(viewer):
    tokens = login("vic")
    assert bearer(tokens["access"]).get(MODELS).status_code == 200
    viewer.set_password("a-brand-new-password-2")
    viewer.save()
    refused = refresh(tokens)
    assert refused.status_code == 401
    assert refused.json()["code"] == "password_changed"
    assert bearer(tokens["access"]).get(MODELS).status_code == 401
    fresh = login("vic", "a-brand-new-password-2")
    assert bearer(fresh["access"]).get(MODELS).status_code == 200
    assert refresh(fresh).status_code == 200


def test_a_deactivated_user_can_neither_refresh_nor_use_a_token(viewer):
    tokens = login("vic")
    viewer.is_active = False
    viewer.save()
    refused = refresh(tokens)
    assert refused.status_code == 401
    assert refused.json()["code"] == "user_inactive"
    assert bearer(tokens["access"]).get(MODELS).status_code == 401


def test_a_refresh_token_of_a_deleted_user_is_refused_not_a_server_error(viewer):
    tokens = login("vic")
    viewer.delete()
    refused = refresh(tokens)
    assert refused.status_code == 401
    assert refused.json()["code"] == "user_not_found"


def test_a_role_or_team_taken_away_is_refused_on_the_very_next_request(data_scientist, api,
                                                                      django_user_model):
    from django.contrib.auth.models import Group

    from core import roles
    from registry.models import Team
    from tests.conftest import _person

    loans = Team.objects.create(name="loans")
    loans.members.add(data_scientist)
    helpers.create_model(owner=data_scientist, name="churn_prediction")
    sam = _person(django_user_model, "sam", roles.DATA_SCIENTIST)
    dana, outsiders = api(data_scientist), api(sam)  # the same tokens throughout
    assert dana.get(f"{MODELS}churn_prediction/").status_code == 200
    assert outsiders.get(f"{MODELS}churn_prediction/").status_code == 404  # the default team

    loans.members.add(sam)
    assert outsiders.get(f"{MODELS}churn_prediction/").status_code == 200
    loans.members.remove(data_scientist)
    assert dana.get(f"{MODELS}churn_prediction/").status_code == 404
    sam.groups.remove(Group.objects.get(name=roles.DATA_SCIENTIST))
    assert outsiders.get(f"{MODELS}churn_prediction/").status_code == 403


def test_an_access_token_of_a_deleted_or_deactivated_user_is_a_401(data_scientist, viewer):
    dana, vic = login("dana"), login("vic")
    data_scientist.is_active = False
    data_scientist.save()
    viewer.delete()
    for tokens in (dana, vic):
        assert bearer(tokens["access"]).get(MODELS).status_code == 401
