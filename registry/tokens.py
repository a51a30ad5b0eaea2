"""JWT authentication and refresh that honour revocation: a new password or a deactivation
ends a session."""

from __future__ import annotations

from functools import cache

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.rest_framework_simplejwt import (
    SimpleJWTScheme,
    TokenRefreshSerializerExtension,
)
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import get_md5_hash_password

from core import roles


@cache
def _user_sql(vendor: str) -> tuple[str, list]:
    """One statement for who is asking: the user's row, its groups' names and its teams
    (one row per group x team), and the default team's id."""
    from registry.models import Team

    q = connection.ops.quote_name
    User = get_user_model()
    groups, teams = User.groups.through._meta, Team.members.through._meta
    columns = ", ".join(f"u.{q(f.column)}" for f in User._meta.concrete_fields)
    return (
        f"SELECT {columns}, g.{q('name')}, tm.{q('team_id')}, "
        f"(SELECT t.{q('id')} FROM {q(Team._meta.db_table)} t WHERE t.{q('name')} = %s) "
        f"FROM {q(User._meta.db_table)} u "
        f"LEFT JOIN {q(groups.db_table)} ug ON ug.{q('user_id')} = u.{q('id')} "
        f"LEFT JOIN {q(Group._meta.db_table)} g ON g.{q('id')} = ug.{q('group_id')} "
        f"LEFT JOIN {q(teams.db_table)} tm ON tm.{q('user_id')} = u.{q('id')} "
        f"WHERE u.{q('id')} = %s"
    ), [f.attname for f in User._meta.concrete_fields]


def load_user(user_id):
    """The user with its roles and teams cached on it (core.roles, registry.access), read
    in one query, fresh on every request: nothing about who may do what is remembered
    between requests. None if there is no such user."""
    # Imported here: DRF imports this module while core.errors is still importing DRF.
    from registry import access
    from registry.models import DEFAULT_TEAM

    sql, names = _user_sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [DEFAULT_TEAM, user_id])
        rows = cursor.fetchall()
    if not rows:
        return None
    width = len(names)
    User = get_user_model()
    user = User.from_db(connection.alias, names, rows[0][:width])
    roles.remember(user, {row[width] for row in rows if row[width] is not None})
    access.remember_teams(user, {row[width + 1] for row in rows if row[width + 1] is not None},
                          rows[0][width + 2])
    return user


class JWTAuthentication(authentication.JWTAuthentication):
    """simplejwt's checks (user exists, active, same password), with the user, its roles and
    its teams read in one query instead of four."""

    def get_user(self, validated_token):
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as e:
            raise InvalidToken(_("Token contained no recognizable user identification")) from e
        if api_settings.USER_ID_FIELD != "id":
            return super().get_user(validated_token)
        try:
            user = load_user(int(user_id))
        except (TypeError, ValueError):
            user = None
        if user is None:
            raise AuthenticationFailed(_("User not found"), code="user_not_found")
        if api_settings.CHECK_USER_IS_ACTIVE and not user.is_active:
            raise AuthenticationFailed(_("User is inactive"), code="user_inactive")
        if api_settings.CHECK_REVOKE_TOKEN and validated_token.get(
                api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(_("The user's password has been changed."),
                                       code="password_changed")
        return user


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    # simplejwt checks the password digest (CHECK_REVOKE_TOKEN) only on access tokens, and a
    # refresh token of a deleted user raises DoesNotExist (a 500): check what an access token
    # would be checked for (user exists, active, same password) before minting one.

    def validate(self, attrs):
        # An invalid token raises TokenError here, which the view turns into a 401.
        JWTAuthentication().get_user(self.token_class(attrs["refresh"]))
        return super().validate(attrs)


class RevokingRefreshSchema(TokenRefreshSerializerExtension):
    """The OpenAPI schema of the refresh endpoint, as for simplejwt's own serializer."""

    target_class = "registry.tokens.TokenRefreshSerializer"


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of registry.tokens.JWTAuthentication (simplejwt's)."""

    target_class = "registry.tokens.JWTAuthentication"
