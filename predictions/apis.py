"""The prediction API: REST in MLflow's shapes, and feedback. (The Open Inference Protocol is
in predictions/oip.py.)

These views are on the hot path, so they keep DRF's authentication, permissions and error
handling but skip its parsers and renderers: the body is read once and parsed with orjson,
and the answer is serialised with orjson, numpy arrays included.
"""

from __future__ import annotations

import numpy as np
import orjson
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import Throttled
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core import roles
from core.errors import ApplicationError, PayloadTooLarge
from core.permissions import HasRole
from predictions import services, throttling
from predictions.auth import ApiTokenAuthentication, CachedJWTAuthentication
from predictions.blocks import new_request_id
from predictions.inputs import InputError, may_hold_booleans, parse_json
from predictions.openapi import FEEDBACK_DOC, PREDICT_DOC
from predictions.serving import NotServable


class PredictionApiView(APIView):
    """Prediction endpoints: tokens or JWT, one role set for every method (HasRole), the
    hourly quota, and the serving errors mapped to the API's error shape."""

    authentication_classes = [ApiTokenAuthentication, CachedJWTAuthentication,
                              SessionAuthentication]
    permission_classes = [HasRole]
    parser_classes: list = []
    renderer_classes = [JSONRenderer]
    read_roles = write_roles = roles.PREDICT_ROLES
    throttled = True

    def handle_exception(self, exc):
        if isinstance(exc, InputError):
            exc = input_error(exc)
        elif isinstance(exc, NotServable):
            exc = serving_error(exc)
        elif isinstance(exc, services.ModelFailed):
            exc = model_error(exc)
        return super().handle_exception(exc)

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.throttled:
            allowed, limit, reset = throttling.hit(request.user)
            if not allowed:
                raise Throttled(wait=reset, detail=f"More than {limit} predictions this hour.")

    @staticmethod
    def read_body(request) -> bytes:
        """The body's bytes, refused with a 413 over PREDICTION_MAX_BODY_BYTES."""
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.PREDICTION_MAX_BODY_BYTES:
            raise InputError(f"the body is {length} bytes, more than the limit of "
                             f"{settings.PREDICTION_MAX_BODY_BYTES}", status=413)
        # Read the stream, not request.body: .body applies the form-data size limit.
        return request._request.read()

    @classmethod
    def payload(cls, request) -> tuple[object, bool]:
        """The parsed body, and whether it may hold JSON booleans."""
        body = cls.read_body(request)
        return parse_json(body), may_hold_booleans(body)


def as_list(values):
    if values is None:
        return None
    array = np.asarray(values)
    return array if array.dtype.kind in "biuf" else array.tolist()


def json_response(body: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status=status,
                        content_type="application/json")


def input_error(exc: InputError) -> ApplicationError:
    error_type = PayloadTooLarge if exc.status == 413 else ApplicationError
    return error_type(exc.message, field=exc.field, status_code=exc.status,
                      code="invalid_input", extra={"row": exc.row, "feature": exc.feature})


def serving_error(exc: NotServable) -> ApplicationError:
    return ApplicationError(exc.message, status_code=exc.status,
                            code="not_found" if exc.status == 404 else "not_servable")


def model_error(exc) -> ApplicationError:
    return ApplicationError(exc.message, status_code=500, code="model_error")


class PredictApi(PredictionApiView):
    """Predictions from the production version (or its canary)."""

    version_from_url = False

    @extend_schema(**PREDICT_DOC)
    def post(self, request, name, version=None):
        payload, booleans = self.payload(request)
        answer = services.predict(
            model_name=name, version=version, payload=payload, booleans=booleans,
            user=request.user, request_id=new_request_id(),
            routing_key=request.headers.get("X-Routing-Key", ""),
        )
        body = {"model": answer.model, "version": answer.version,
                "predictions": as_list(answer.predictions), "request_id": answer.request_id,
                "routed_to": answer.route}
        if answer.probabilities is not None:
            body["probabilities"] = as_list(answer.probabilities)
        return json_response(body)


class FeedbackApi(PredictionApiView):
    """Ground truth for rows of an answered request: `{"feedback": [{"row": 0, "actual": 1}]}`."""

    read_roles = write_roles = roles.FEEDBACK_ROLES
    throttled = False

    @extend_schema(**FEEDBACK_DOC)
    def post(self, request, request_id):
        payload, _ = self.payload(request)
        if not isinstance(payload, dict) or "feedback" not in payload:
            raise ApplicationError('send {"feedback": [{"row": 0, "actual": value}, ...]}',
                                   field="feedback")
        saved = services.feedback_record(request_id=request_id, items=payload["feedback"],
                                         actor=request.user)
        return Response({"request_id": request_id, "recorded": len(saved)}, status=201)
