"""The model inventory (GET /api/v1/inventory/) and a version's periodic reviews
(GET/POST /api/v1/models/<name>/versions/<version>/reviews/)."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from compliance import inventory, services
from core import roles
from core.errors import ApplicationError
from core.parsers import JSONParser
from governance.models import Review
from registry import selectors as registry_selectors
from registry.serializers import RejectUnknownFieldsMixin

_TIME_OR_NULL = {"type": "string", "format": "date-time", "nullable": True}
INVENTORY_ROW = {
    "type": "object",
    "properties": {
        "model": {"type": "string"},
        "risk_tier": {"type": "string", "enum": ["", "low", "medium", "high"],
                      "description": "Empty: not assessed yet."},
        "risk_reason": {"type": "string"}, "business_use": {"type": "string"},
        "owner": {"type": "string"}, "team": {"type": "string"},
        "production_version": {"type": "string", "nullable": True},
        "in_production_since": _TIME_OR_NULL,
        "last_validation": {"type": "object", "nullable": True, "properties": {
            "version": {"type": "string"}, "status": {"type": "string"}, "at": _TIME_OR_NULL}},
        "last_review": {"type": "object", "nullable": True, "properties": {
            "version": {"type": "string"}, "by": {"type": "string"}, "at": _TIME_OR_NULL,
            "comment": {"type": "string"}}},
        "next_review_at": _TIME_OR_NULL,
        "overdue": {"type": "boolean"},
        "days_overdue": {"type": "number", "nullable": True},
        "open_alerts": {"type": "integer"},
    },
}


class InventoryApi(APIView):
    """Every model you may see, with its risk tier and why, business use, owner and team,
    production version, last validation, last review, next review date and open alerts.
    `?tier=low|medium|high|none`, `?overdue=true|false`; `?output=csv` or `pdf` to export."""

    read_roles = roles.READ_ROLES

    @extend_schema(
        parameters=[
            OpenApiParameter("tier", str, enum=["low", "medium", "high", "none"]),
            OpenApiParameter("overdue", bool),
            OpenApiParameter("output", str, enum=["json", "csv", "pdf"], default="json"),
        ],
        responses={
            (200, "application/json"): OpenApiResponse(
                {"type": "object", "properties": {
                    "generated_at": {"type": "string", "format": "date-time"},
                    "count": {"type": "integer"},
                    "results": {"type": "array", "items": INVENTORY_ROW}}},
                description="The inventory"),
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="As CSV"),
            (200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY,
                                                      description="As PDF"),
            400: OpenApiResponse(description="A bad `tier`, `overdue` or `output`"),
        },
    )
    def get(self, request):
        output = request.query_params.get("output", "json")
        if output not in ("json", "csv", "pdf"):
            raise ApplicationError("json, csv or pdf", field="output")
        filters = inventory.parse_filters(request.query_params)
        rows = inventory.model_inventory(user=request.user, **filters)
        return inventory_response(rows, output=output, filters=filters,
                                  viewer=request.user.get_username())


def inventory_response(rows, *, output: str, filters: dict, viewer: str):
    """The inventory as CSV or PDF (the API and the admin page), or JSON."""
    from django.utils import timezone

    if output == "csv":
        response = HttpResponse(inventory.inventory_csv(rows), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="model-inventory-{timezone.now():%Y%m%d-%H%M}.csv"')
        return response
    if output == "pdf":
        return inventory.inventory_pdf(rows, filters=filters, viewer=viewer)
    return Response({"generated_at": timezone.now(), "count": len(rows), "results": rows})


class ReviewOutputSerializer(serializers.ModelSerializer):
    model = serializers.CharField(source="version.model.name", read_only=True)
    version = serializers.CharField(source="version.version", read_only=True)
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "model", "version", "reviewer", "comment", "created_at",
                  "next_review_at"]


class ReviewInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=10_000,
                                    help_text="What the review found (required).")


class VersionReviewsApi(APIView):
    """A production version's periodic reviews. POST records one (an approver or admin of the
    model's team who did not register the version; a comment is required): it sets the next
    review date and resolves an open review-overdue alert."""

    parser_classes = [JSONParser]
    read_roles = roles.READ_ROLES
    write_roles = roles.APPROVE_ROLES

    @extend_schema(responses=ReviewOutputSerializer(many=True))
    def get(self, request, name, version):
        found = registry_selectors.version_get(name, version, user=request.user)
        reviews = Review.objects.filter(version=found).select_related("version__model",
                                                                      "reviewer")
        return Response(ReviewOutputSerializer(reviews, many=True).data)

    @extend_schema(request=ReviewInputSerializer, responses={
        201: ReviewOutputSerializer,
        400: OpenApiResponse(description="No `comment`"),
        403: OpenApiResponse(description="Not an approver or admin of the model's team, or "
                             "the version's registrant"),
        404: OpenApiResponse(description="No such model or version that you may see"),
        409: OpenApiResponse(description="The version is not in production")})
    def post(self, request, name, version):
        found = registry_selectors.version_get(name, version, user=request.user)
        payload = ReviewInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        review = services.version_review_record(
            version=found, actor=request.user, comment=payload.validated_data.get("comment", ""))
        review = Review.objects.select_related("version__model", "reviewer").get(pk=review.pk)
        return Response(ReviewOutputSerializer(review).data, status=status.HTTP_201_CREATED)
