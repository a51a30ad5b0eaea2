"""The Open Inference Protocol (KServe v2, REST/JSON), so standard inference clients work.

    GET  /v2/health/live   /v2/health/ready   /v2
    GET  /v2/models/<name>                    metadata: inputs and outputs
    GET  /v2/models/<name>/ready
    POST /v2/models/<name>/infer              the production version (or its canary)
    POST /v2/models/<name>/versions/<v>/infer

Errors are `{"error": "..."}`, as the protocol says. Our request id and the route come back
in the response's `parameters`.
"""

from __future__ import annotations

import uuid

import numpy as np
from django.db import connection
from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.errors import ApplicationError
from predictions import services
from predictions.apis import (
    PredictionApiView,
    json_response,
)
from predictions.openapi import INFER_DOC
from predictions.serving import NotServable
from registry import access, health

DATATYPES = {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}


def error_body(status_code: int, detail: str) -> dict:
    return {"error": detail}


class OipMixin:
    def handle_exception(self, exc):
        response = super().handle_exception(exc)  # PredictionApiView maps serving errors
        if response.status_code >= 400:
            detail = response.data.get("detail") if isinstance(response.data, dict) else None
            response.data = {"error": str(detail or response.data)}
        return response


class LiveApi(OipMixin, APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return JsonResponse({"live": True})


class ReadyApi(OipMixin, APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        """Ready while the database answers; `degraded` names what is down meanwhile (the
        cache, the broker, a model whose files failed their check)."""
        try:
            connection.ensure_connection()
        except Exception:
            return JsonResponse({"ready": False, "degraded": {"database": "unreachable"}},
                                status=503)
        return JsonResponse({"ready": True, "degraded": health.degraded()})


class ServerMetadataApi(OipMixin, APIView):
    authentication_classes: list = []
    permission_classes: list = []

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        return JsonResponse({"name": "model-governance", "version": "1", "extensions": []})


def _outputs_metadata(framework: str) -> list[dict]:
    outputs = [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    if framework == "sklearn":
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, -1]})
    return outputs


class ModelMetadataApi(OipMixin, PredictionApiView):
    throttled = False

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, name, version=None):
        target = services.serving_target(name, version, request.user)
        signature = target.signature
        return JsonResponse({
            "name": name,
            "versions": [target.version],
            "platform": {"sklearn": "scikit-learn", "torch": "pytorch_torchscript",
                         "onnx": "onnxruntime_onnx"}[target.framework],
            "inputs": [{"name": "input-0", "datatype": "FP64" if signature.numeric else "BYTES",
                        "shape": [-1, len(signature.names)]}],
            "outputs": _outputs_metadata(target.framework),
            "parameters": {"features": list(signature.names),
                           "dtypes": list(signature.dtypes)},
        })


class ModelReadyApi(OipMixin, PredictionApiView):
    throttled = False

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, name, version=None):
        from governance.selectors import servable
        from registry.models import ModelVersion

        try:
            target = services.serving_target(name, version, request.user)
        except NotServable as exc:
            if exc.status != 404 or version is not None or not access.servable_models(
                    request.user).filter(name=name).exists():
                raise
            return JsonResponse({"name": name, "ready": False}, status=400)  # none in production
        ready, _ = servable(ModelVersion.objects.get(pk=target.version_id))
        return JsonResponse({"name": name, "ready": ready}, status=200 if ready else 400)


def _tensor(name: str, values) -> dict:
    array = np.asarray(values)
    datatype = DATATYPES.get(array.dtype.kind, "BYTES")
    data = array.ravel() if datatype != "BYTES" else [str(v) for v in array.ravel().tolist()]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


class InferApi(OipMixin, PredictionApiView):
    @extend_schema(**INFER_DOC)
    def post(self, request, name, version=None):
        payload, booleans = self.payload(request)
        wanted = None
        if isinstance(payload, dict) and payload.get("outputs") is not None:
            if not isinstance(payload["outputs"], list) or not all(
                    isinstance(o, dict) and isinstance(o.get("name"), str)
                    for o in payload["outputs"]):
                raise ApplicationError('outputs must be a list of {"name": ...}',
                                       field="outputs")
            wanted = [o["name"] for o in payload["outputs"]]
        answer = services.predict(
            model_name=name, version=version, payload=payload, booleans=booleans,
            user=request.user, request_id=uuid.uuid4().hex, protocol="v2",
            routing_key=request.headers.get("X-Routing-Key", ""), outputs=wanted,
        )
        outputs = {"predict": _tensor("predict", answer.predictions)}
        if answer.probabilities is not None:
            outputs["predict_proba"] = _tensor("predict_proba", answer.probabilities)
        if wanted is not None:
            outputs = {n: outputs[n] for n in wanted}
        body = {
            "model_name": answer.model,
            "model_version": answer.version,
            "outputs": list(outputs.values()),
            "parameters": {"request_id": answer.request_id, "routed_to": answer.route},
        }
        if isinstance(payload, dict) and isinstance(payload.get("id"), str):
            body["id"] = payload["id"]
        return json_response(body)
