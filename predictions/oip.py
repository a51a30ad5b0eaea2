"""The Open Inference Protocol (KServe v2, REST/JSON), so standard inference clients work.

    GET  /v2/health/live   /v2/health/ready   /v2
    GET  /v2/models/<name>                    metadata: inputs and outputs
    GET  /v2/models/<name>/ready
    POST /v2/models/<name>/infer              the production version (or its canary)
    POST /v2/models/<name>/versions/<v>/infer

Errors are `{"error": "..."}`, as the protocol says. Our request id and the route come back
in the response's `parameters`.

The binary tensor data extension (what tritonclient and KServe's client send by default) is
supported both ways: a request with an `Inference-Header-Content-Length` header carries its
inputs' raw bytes after the JSON header (predictions.inputs.split_binary), and an output asked
for with `parameters.binary_data: true` (or every output, with the request's
`parameters.binary_data_output: true`) comes back as raw little-endian bytes after the JSON
header, with that header set and `parameters.binary_data_size` on the output.
"""

from __future__ import annotations

import numpy as np
import orjson
from django.db import connection
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.views import APIView

from core.errors import ApplicationError
from predictions import services
from predictions.apis import (
    PredictionApiView,
    json_response,
)
from predictions.blocks import new_request_id
from predictions.inputs import HEADER_LENGTH, split_binary
from predictions.openapi import INFER_DOC
from predictions.serving import NotServable
from registry import access, health


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
        return JsonResponse({"name": "model-governance", "version": "1",
                             "extensions": ["binary_tensor_data"]})


class ModelMetadataApi(OipMixin, PredictionApiView):
    throttled = False

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request, name, version=None):
        """What `infer` takes and answers: the outputs (and their datatypes) of the version
        that answers, and in `versions` every version the caller may call by number."""
        target, outputs = services.model_outputs(name, version, request.user)
        signature = target.signature
        return JsonResponse({
            "name": name,
            "versions": services.reachable_versions(name, request.user),
            "platform": {"sklearn": "scikit-learn", "torch": "pytorch_torchscript",
                         "onnx": "onnxruntime_onnx"}[target.framework],
            "inputs": [{"name": "input-0", "datatype": "FP64" if signature.numeric else "BYTES",
                        "shape": [-1, len(signature.names)]}],
            "outputs": outputs,
            "parameters": {"version": target.version, "features": list(signature.names),
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


def _tensor(name: str, values, binary: bool) -> tuple[dict, bytes | None]:
    """An output tensor, its values in `data` or, for a binary output, as raw bytes."""
    array = np.asarray(values)
    datatype = services.datatype_of(array.dtype.kind)
    tensor = {"name": name, "shape": list(array.shape), "datatype": datatype}
    if not binary:
        tensor["data"] = (array.ravel() if datatype != "BYTES"
                          else [str(v) for v in array.ravel().tolist()])
        return tensor, None
    if datatype == "BYTES":
        raw = b"".join(len(e).to_bytes(4, "little") + e
                       for e in (str(v).encode() for v in array.ravel().tolist()))
    else:
        dtype = {"BOOL": "u1", "INT64": "<i8", "FP64": "<f8"}[datatype]
        raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
    tensor["parameters"] = {"binary_data_size": len(raw)}
    return tensor, raw


def _wanted(payload) -> dict[str, bool] | None:
    """The outputs asked for, each with whether it goes back in binary (None: all)."""
    if not isinstance(payload, dict) or payload.get("outputs") is None:
        return None
    outputs = payload["outputs"]
    if not isinstance(outputs, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs):
        raise ApplicationError('outputs must be a list of {"name": ...}', field="outputs")
    wanted = {}
    for o in outputs:
        parameters = o.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise ApplicationError("an output's parameters are an object", field="outputs")
        wanted[o["name"]] = parameters.get("binary_data") is True
    return wanted


class InferApi(OipMixin, PredictionApiView):
    @extend_schema(**INFER_DOC)
    def post(self, request, name, version=None):
        header_length = request.headers.get(HEADER_LENGTH)
        if header_length is None:
            payload, booleans = self.payload(request)
        else:
            payload, booleans = self.binary_payload(request, header_length)
        wanted = _wanted(payload)
        parameters = payload.get("parameters") if isinstance(payload, dict) else None
        all_binary = isinstance(parameters, dict) and parameters.get("binary_data_output") is True
        answer = services.predict(
            model_name=name, version=version, payload=payload, booleans=booleans,
            user=request.user, request_id=new_request_id(), protocol="v2",
            routing_key=request.headers.get("X-Routing-Key", ""),
            outputs=None if wanted is None else list(wanted),
        )
        values = {"predict": answer.predictions}
        if answer.probabilities is not None:
            values["predict_proba"] = answer.probabilities
        names = list(values) if wanted is None else list(wanted)
        tensors, chunks = [], []
        for output in names:
            tensor, raw = _tensor(output, values[output],
                                  all_binary or bool(wanted and wanted[output]))
            tensors.append(tensor)
            if raw is not None:
                chunks.append(raw)
        body = {
            "model_name": answer.model,
            "model_version": answer.version,
            "outputs": tensors,
            "parameters": {"request_id": answer.request_id, "routed_to": answer.route},
        }
        if isinstance(payload, dict) and isinstance(payload.get("id"), str):
            body["id"] = payload["id"]
        if not chunks:
            return json_response(body)
        header = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        response = HttpResponse(b"".join([header, *chunks]),
                                content_type="application/octet-stream")
        response[HEADER_LENGTH] = str(len(header))
        return response

    def binary_payload(self, request, header_length: str):
        """The binary tensor data extension's body: the JSON header, then raw tensors."""
        body = self.read_body(request)
        payload = split_binary(body, header_length.strip())
        return payload, True

