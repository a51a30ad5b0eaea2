"""JWT refresh that honours revocation: a new password or a deactivation ends a session."""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import TokenRefreshSerializerExtension
from rest_framework_simplejwt import serializers
from rest_framework_simplejwt.authentication import JWTAuthentication


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
