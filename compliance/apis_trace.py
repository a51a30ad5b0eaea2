"""GET /api/v1/predictions/<request_id>/trace: a prediction's whole chain, as JSON or PDF."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance.trace import prediction_trace, trace_pdf
from core.errors import ApplicationError

_LINKED = {"id": {"type": "integer"}, "admin_url": {"type": "string", "nullable": True,
                                                    "description": "The row's admin page."}}
_PERSON = {"type": "object", "nullable": True,
           "properties": {"username": {"type": "string"}, "name": {"type": "string"}}}
_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = {**_TIME, "nullable": True}
_ANSWER = {
    "type": "object",
    "properties": {
        **_LINKED, "time": _TIME, "route": {"type": "string",
                                            "enum": ["production", "canary", "shadow",
                                                     "direct"]},
        "protocol": {"type": "string"}, "caller": _PERSON, "model": {"type": "string"},
        "version": {"type": "string"}, "n_rows": {"type": "integer"},
        "latency_ms": {"type": "number"}, "routing_key": {"type": "string"},
        "rows_logged": {"type": "integer"},
        "inputs_sampled_away": {"type": "boolean", "description": "The sampling rate kept "
                                "none of the request's rows: only the log row itself is left."},
        "sampling": {"type": "string"},
        "columns": {"type": "array", "items": {"type": "string"}},
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "row": {"type": "integer", "description": "The row's index in the request."},
            "inputs": {"type": "array", "items": {}}, "output": {},
            "probabilities": {"type": "array", "nullable": True,
                              "items": {"type": "number"}}}}},
    },
}
TRACE_RESPONSE = {
    "type": "object",
    "required": ["request_id", "answered", "at", "version", "deployment", "validation",
                 "monitoring", "audit_events"],
    "properties": {
        "request_id": {"type": "string"},
        "answered": {"type": "boolean", "description": "False when only errors were recorded."},
        "at": {**_TIME, "description": "The request's moment: what was live, open and "
               "recorded then."},
        "generated_at": _TIME,
        "request": {**_ANSWER, "nullable": True},
        "shadow_answers": {"type": "array", "items": _ANSWER},
        "errors": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "feedback": {"type": "array", "items": {"type": "object", "properties": {
            "row": {"type": "integer"}, "actual": {}, "at": _TIME}}},
        "version": {"type": "object", "properties": {
            **_LINKED, "api_url": {"type": "string"}, "model": {"type": "string"},
            "version": {"type": "string"}, "stage_now": {"type": "string"},
            "registered_by": _PERSON, "registered_at": _TIME,
            "files": {"type": "array", "items": {"type": "object", "properties": {
                "filename": {"type": "string"}, "role": {"type": "string"},
                "size": {"type": "integer"}, "sha256": {"type": "string"},
                "answered": {"type": "boolean"}, "state": {"type": "string"}}}},
            "integrity": {"type": "object", "properties": {
                "state": {"type": "string", "enum": ["intact", "failed"]},
                "failed_at": _TIME_OR_NULL, "failed_before_request": {"type": "boolean"},
                "problem": {"type": "object", "nullable": True, "additionalProperties": True},
                "rehashed_now": {"type": "boolean"}, "how": {"type": "string"}}}}},
        "deployment": {"type": "object", "nullable": True, "properties": {
            **_LINKED, "api_url": {"type": "string"}, "kind": {"type": "string"},
            "from_stage": {"type": "string"}, "to_stage": {"type": "string"},
            "requested_by": _PERSON, "requested_at": _TIME, "deployed_by": _PERSON,
            "completed_at": _TIME, "reason": {"type": "string"},
            "approval_request": {"type": "object", "nullable": True,
                                 "additionalProperties": True},
            "decisions": {"type": "array", "items": {"type": "object", "properties": {
                "approver": _PERSON, "decision": {"type": "string",
                                                  "enum": ["approve", "reject"]},
                "comment": {"type": "string"}, "at": _TIME}}}}},
        "rollout": {"type": "object", "nullable": True, "additionalProperties": True,
                    "description": "The canary or shadow rollout that routed the request."},
        "validation": {"type": "object", "nullable": True, "properties": {
            **_LINKED, "relied_on_as": {"type": "string"}, "status": {"type": "string"},
            "finished_at": _TIME_OR_NULL,
            "checks": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "status": {"type": "string"},
                "detail": {"type": "string"}}}}}},
        "monitoring": {"type": "object", "properties": {
            "last_run": {"type": "object", "nullable": True, "additionalProperties": True},
            "open_alerts": {"type": "array", "items": {"type": "object",
                                                       "additionalProperties": True}}}},
        "audit_events": {"type": "array", "items": {"type": "object", "properties": {
            "seq": {"type": "integer"}, "admin_url": {"type": "string"}, "at": _TIME,
            "actor": {"type": "string"}, "action": {"type": "string"},
            "object": {"type": "string"}, "reason": {"type": "string"}}}},
        "later_audit_events": {"type": "integer"},
    },
}


class PredictionTraceApi(APIView):
    """Everything behind one prediction: the request as logged, the version that answered
    (files, sha256, integrity), the deployment that made it live (who asked, who approved
    with their comment, who deployed), the validation it relied on, monitoring and open
    alerts at that moment, and the audit events that tie them. `?output=pdf` for the PDF."""

    # Anyone signed in gets past the door: who may not see the model gets the 404 of an
    # unknown request id from the selector, and nothing is written for them.
    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("output", str, enum=["json", "pdf"], default="json")],
        responses={
            (200, "application/json"): OpenApiResponse(TRACE_RESPONSE, description="The trace"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                      description="The trace as PDF"),
            400: OpenApiResponse(description="An unknown `output`"),
            404: OpenApiResponse(description="No prediction with this request id that you "
                                 "may see (the error names `request_id`)"),
        },
    )
    def get(self, request, request_id):
        output = request.query_params.get("output", "json")
        if output not in ("json", "pdf"):
            raise ApplicationError("json or pdf", field="output")
        trace = prediction_trace(request_id=request_id, user=request.user)
        if output == "pdf":
            return trace_pdf(trace, base=request.build_absolute_uri("/").rstrip("/"),
                             viewer=request.user.get_username())
        return Response(trace)
