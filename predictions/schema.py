"""How the OpenAPI schema describes the prediction API's authenticators."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "predictions.auth.ApiTokenAuthentication"
    name = "apiToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A service account's API token: `Authorization: Bearer mgt_...`",
        }


class CachedJWTScheme(SimpleJWTScheme):
    """The same bearer JWT as jwtAuth; its own name, since it is another class."""

    target_class = "predictions.auth.CachedJWTAuthentication"
    name = "predictionJwtAuth"
