"""MLflow's scoring protocol (what `mlflow models serve` answers), so a script written for it
works here with only its URL and a token changed.

    POST /invocations                   the model named by the X-Model-Name header
    POST /mlflow/<name>/invocations     the model named in the path
    GET  /ping   /version               liveness and the protocol's version (no token)
    GET  /mlflow/<name>/ping            200 when the model has a production version to serve

Bodies are MLflow's: JSON with one of `dataframe_split`, `dataframe_records`, `instances` or
`inputs` (rows, records or columns; `params` is accepted and, since our models take none,
unused), or `text/csv` with a header row. The answer is `{"predictions": [...]}` (the model's
`predict`; the request id, for feedback, and the version come back in the
X-Prediction-Request-Id and X-Model-Version headers), an error MLflow's
`{"error_code": ..., "message": ...}`.

Everything else is the prediction API's: the same token, quota, routing (canary, shadow),
row checks and prediction log (protocol "mlflow"), through predictions.services.predict.
"""

from __future__ import annotations

from django.db import connection
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.views import APIView

from core.errors import ApplicationError
from predictions import services
from predictions.apis import PredictionApiView, as_list, json_response
from predictions.blocks import new_request_id
from predictions.inputs import CsvBody, InputError, may_hold_booleans, parse_json
from predictions.openapi import PREDICT_EXAMPLES

PROTOCOL_VERSION = "2"  # MLflow 2's scoring protocol (the four JSON shapes, params, CSV)
MODEL_HEADER = "X-Model-Name"

ERROR_CODES = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
               404: "RESOURCE_DOES_NOT_EXIST", 405: "BAD_REQUEST", 413: "INVALID_PARAMETER_VALUE",
               415: "BAD_REQUEST", 422: "INVALID_PARAMETER_VALUE", 429: "REQUEST_LIMIT_EXCEEDED",
               503: "TEMPORARILY_UNAVAILABLE"}


def error_body(status_code: int, detail: str) -> dict:
    return {"error_code": ERROR_CODES.get(status_code, "INTERNAL_ERROR"), "message": detail}


class MlflowMixin:
    """Errors in MLflow's shape, with our status codes (MLflow's server says 400 for most)."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response.status_code >= 400:
            data = response.data if isinstance(response.data, dict) else {}
            detail = data.get("detail") or data.get("message") or str(response.data)
            response.data = error_body(response.status_code, str(detail))
        return response


class PingApi(MlflowMixin, APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request):
        """200 while the app answers (its database too), as `mlflow models serve` does once
        its model loaded; 503 otherwise. Per model: /mlflow/<name>/ping."""
        try:
            connection.ensure_connection()
        except Exception:
            return HttpResponse("\n", status=503, content_type="text/plain")
        return HttpResponse("\n", content_type="text/plain")


class VersionApi(MlflowMixin, APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request, name=None):
        """The version of MLflow's scoring protocol this server speaks."""
        return HttpResponse(PROTOCOL_VERSION, content_type="text/plain")


class ModelPingApi(MlflowMixin, PredictionApiView):
    throttled = False

    @extend_schema(responses={(200, "text/plain"): OpenApiTypes.STR})
    def get(self, request, name):
        services.serving_target(name, None, request.user)  # 404 without one in production
        return HttpResponse("\n", content_type="text/plain")


def _content(request, body: bytes):
    """The body as parse_mlflow takes it, by content type (MLflow's rules: JSON or CSV,
    UTF-8 only; a missing type is read as JSON)."""
    content_type = request.META.get("CONTENT_TYPE") or "application/json"
    mime, *options = (part.strip() for part in content_type.split(";"))
    parameters = dict(option.partition("=")[::2] for option in options if option)
    charset = parameters.pop("charset", "utf-8").strip('"').lower()
    if charset not in ("utf-8", "utf8"):
        raise ApplicationError("the scoring server only supports UTF-8", status_code=415,
                               field="Content-Type")
    if parameters:
        raise ApplicationError(f"unrecognised content type parameters: "
                               f"{', '.join(parameters)}", status_code=415,
                               field="Content-Type")
    if mime.lower() == "text/csv":
        if not body.strip():
            raise InputError("the CSV body is empty: a header row naming the features, then "
                             "rows", status=400)
        try:
            return CsvBody(body.decode())
        except UnicodeDecodeError as exc:
            raise InputError(f"the body is not UTF-8 text: {exc}", status=400) from None
    if mime.lower() != "application/json":
        raise ApplicationError(f"this predictor takes application/json or text/csv, not "
                               f"{mime!r}", status_code=415, field="Content-Type")
    return parse_json(body)


class InvocationsApi(MlflowMixin, PredictionApiView):
    """Predictions in MLflow's scoring protocol (the production version, or its canary)."""

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT, "text/csv": OpenApiTypes.STR},
        examples=PREDICT_EXAMPLES,
        parameters=[OpenApiParameter(MODEL_HEADER, str, OpenApiParameter.HEADER,
                                     description="The model, for /invocations (the path "
                                     "names it in /mlflow/<name>/invocations)"),
                    OpenApiParameter("X-Routing-Key", str, OpenApiParameter.HEADER,
                                     description="Sticky canary routing")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def post(self, request, name=None):
        if name is None:
            name = request.headers.get(MODEL_HEADER, "").strip()
            if not name:
                raise ApplicationError(f"name the model: the {MODEL_HEADER} header, or POST "
                                       "to /mlflow/<name>/invocations", field=MODEL_HEADER)
        body = self.read_body(request)
        payload = _content(request, body)
        answer = services.predict(
            model_name=name, payload=payload, booleans=may_hold_booleans(body),
            user=request.user,
            request_id=new_request_id(), protocol="mlflow",
            routing_key=request.headers.get("X-Routing-Key", ""),
        )
        response = json_response({"predictions": as_list(answer.predictions)})
        response["X-Prediction-Request-Id"] = answer.request_id  # for feedback
        response["X-Model-Version"] = answer.version
        return response
