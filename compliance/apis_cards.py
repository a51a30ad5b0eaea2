"""GET/PATCH /api/v1/models/<name>/versions/<version>/card/: a version's model card, as JSON,
HTML, Markdown or PDF; PATCH changes its sections."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import cards
from core.errors import ApplicationError
from core.parsers import JSONParser
from registry import services
from registry.cards import MAX_SECTION_CHARS, SECTIONS

_PERSON = {"type": "object", "nullable": True,
           "properties": {"username": {"type": "string"}, "name": {"type": "string"}}}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
SECTIONS_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {key: {"type": "string", "maxLength": MAX_SECTION_CHARS} for key in SECTIONS},
    "description": "Sections to change; the others stay. An empty text clears a section.",
    "example": {"intended_use": "Rank this week's loans by their chance of coming back late.",
                "limitations": "Members with little history get scores near the base rate."},
}
CARD_RESPONSE = {
    "type": "object",
    "required": ["model", "version", "sections", "owners", "metrics", "approvals",
                 "deployments", "monitoring"],
    "properties": {
        "model": {"type": "string"}, "version": {"type": "string"},
        "stage": {"type": "string"}, "task_type": {"type": "string"},
        "framework": {"type": "string"}, "algorithm": {"type": "string"},
        "description": {"type": "string"}, "generated_at": _TIME,
        "admin_url": {"type": "string", "nullable": True}, "api_url": {"type": "string"},
        "sections": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string", "enum": list(SECTIONS)}, "title": {"type": "string"},
            "text": {"type": "string"}}}},
        "required_sections": {"type": "array", "items": {"type": "string"},
                              "description": "What the model's policy requires before "
                              "production."},
        "missing_required_sections": {"type": "array", "items": {"type": "string"}},
        "owners": {"type": "object", "properties": {
            "owner": _PERSON, "team": {"type": "string"}, "registered_by": _PERSON,
            "author": {"type": "string"}, "registered_at": _TIME}},
        "risk": {"type": "object", "properties": {
            "tier": {"type": "string"}, "reason": {"type": "string"},
            "business_use": {"type": "string"}}},
        "training_dataset": {"type": "string"},
        "metrics": {"type": "object", "properties": {
            "rows": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "claimed": {"nullable": True},
                "measured": {"nullable": True}}}},
            "measured_on": {"type": "object", "additionalProperties": True}}},
        "images": {"type": "array", "items": {"type": "object", "properties": {
            "filename": {"type": "string"}, "role": {"type": "string"},
            "sha256": {"type": "string"}, "note": {"type": "string"}}}},
        "approvals": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "deployments": {"type": "array", "items": {"type": "object",
                                                   "additionalProperties": True}},
        "monitoring": {"type": "object", "properties": {
            "last_run": {"type": "object", "nullable": True, "additionalProperties": True},
            "open_alerts": {"type": "array", "items": {"type": "object",
                                                       "additionalProperties": True}}}},
    },
}
_OUTPUT = OpenApiParameter("output", str, enum=list(cards.OUTPUTS), default="json")
_NOT_FOUND = OpenApiResponse(description="No such model or version that you may see")


def _render(request, document: dict):
    output = request.query_params.get("output", "json")
    if output not in cards.OUTPUTS:
        raise ApplicationError(" or ".join(cards.OUTPUTS), field="output")
    viewer = request.user.get_username()
    if output == "pdf":
        return cards.card_pdf(document, viewer=viewer)
    if output == "html":
        return HttpResponse(cards.card_html(document, viewer=viewer),
                            content_type="text/html; charset=utf-8")
    if output == "md":
        return HttpResponse(cards.card_markdown(document),
                            content_type="text/markdown; charset=utf-8")
    return Response(cards.card_json(document))


class VersionCardApi(APIView):
    """A version's model card: its sections (intended use, out-of-scope uses, training data,
    evaluation data, limitations, ethical considerations), owners and team, claimed and
    measured metrics with the evaluation images, approvals, deployments and the monitoring
    summary. `?output=html|md|pdf` for a document. PATCH (the team's data scientists,
    approvers and admins) changes sections; the version folder's model_card.md follows."""

    # Anyone signed in gets past the door: who may not see the model gets the selector's
    # 404, as for the trace; a viewer who PATCHes gets the service's 403.
    permission_classes = [IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(
        parameters=[_OUTPUT],
        responses={
            (200, "application/json"): OpenApiResponse(CARD_RESPONSE, description="The card"),
            (200, "text/html"): OpenApiResponse(OpenApiTypes.STR, description="As HTML"),
            (200, "text/markdown"): OpenApiResponse(OpenApiTypes.STR,
                                                    description="As Markdown"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                      description="As PDF"),
            400: OpenApiResponse(description="An unknown `output`"),
            404: _NOT_FOUND,
        },
    )
    def get(self, request, name, version):
        found = cards.card_version(name, version, user=request.user)
        return _render(request, cards.card_document(found))

    @extend_schema(
        request={"application/json": SECTIONS_SCHEMA},
        parameters=[_OUTPUT],
        responses={
            (200, "application/json"): OpenApiResponse(CARD_RESPONSE,
                                                       description="The changed card"),
            403: OpenApiResponse(description="Your role or team may not change it"),
            404: _NOT_FOUND,
            409: OpenApiResponse(description="A deployment is moving the version's folder"),
            422: OpenApiResponse(description="An unknown section, or a text that is not a "
                                 "string or too long (named in `errors`)"),
        },
    )
    def patch(self, request, name, version):
        found = cards.card_version(name, version, user=request.user)
        services.version_card_update(version=found, actor=request.user, sections=request.data)
        return _render(request, cards.card_document(
            cards.card_version(name, version, user=request.user)))
