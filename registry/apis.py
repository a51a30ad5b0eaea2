"""The registry REST API. Each view parses input, calls one service or selector, shapes output."""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from core import roles
from core.errors import ApplicationError
from core.parsers import JSONParser
from registry import access, loaders, selectors, services, uploads
from registry.filters import ModelVersionFilter, RegisteredModelFilter
from registry.metadata import parse_metadata_text
from registry.models import FileRole, ModelVersion
from registry.serializers import (
    ModelCreateInputSerializer,
    ModelOutputSerializer,
    ModelRiskInputSerializer,
    ModelUpdateInputSerializer,
    VersionCreateInputSerializer,
    VersionOutputSerializer,
    VersionUpdateInputSerializer,
)

FILE_FIELDS = frozenset({"file", "preprocessor", "reference"})
FORM_FIELDS = frozenset({"version", "framework", "metadata", "sha256"})


class ApiRootApi(APIView):
    """Where everything is."""

    @extend_schema(exclude=True)
    def get(self, request):
        def link(name, **kwargs):
            return reverse(name, kwargs=kwargs, request=request)

        return Response(
            {
                "models": link("api:model-list"),
                "versions": link("api:all-versions"),
                "approvals": link("api:approval-list"),
                "deployments": link("api:deployment-list"),
                "audit": link("api:audit-list"),
                "audit_report": link("api:audit-report"),
                "inventory": link("api:inventory"),
                "token": link("api:token-obtain"),
                "token_refresh": link("api:token-refresh"),
                "schema": link("schema"),
                "docs": link("api-docs"),
            }
        )


# --- registered models ------------------------------------------------------------------------


# Service accounts read the registry for the models they were granted (registry.access).
REGISTRY_READ_ROLES = roles.READ_ROLES | {roles.SERVICE}


class ModelListCreateApi(generics.ListAPIView):
    """Registered models, with their latest and production versions."""

    parser_classes = [JSONParser]
    read_roles = REGISTRY_READ_ROLES
    serializer_class = ModelOutputSerializer
    filterset_class = RegisteredModelFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]

    def get_queryset(self):
        return selectors.model_list(user=self.request.user)

    @extend_schema(
        request=ModelCreateInputSerializer,
        responses={201: ModelOutputSerializer},
        summary="Register a new model name",
    )
    def post(self, request):
        payload = ModelCreateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        owner = data.get("owner", request.user)
        if owner != request.user and not roles.has_role(request.user, roles.ADMIN_ROLES):
            raise PermissionDenied("Only an admin may register a model for someone else.")
        model = services.model_create(
            name=data["name"],
            task_type=data["task_type"],
            description=data.get("description", ""),
            tags=data.get("tags", ()),
            owner=owner,
            team_name=data.get("team"),
            actor=request.user,
        )
        # Written from the row in hand, not read again: a new model has no versions yet.
        model.version_count, model.latest_version, model.production_version = 0, None, None
        body = ModelOutputSerializer(model, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class ModelDetailApi(APIView):
    """One registered model. Its owner or an admin may change it (an admin also its team)."""

    parser_classes = [JSONParser]
    read_roles = REGISTRY_READ_ROLES

    @extend_schema(responses=ModelOutputSerializer)
    def get(self, request, name):
        model = selectors.model_get(name, user=request.user)
        return Response(ModelOutputSerializer(model, context={"request": request}).data)

    @extend_schema(request=ModelUpdateInputSerializer, responses=ModelOutputSerializer)
    def patch(self, request, name):
        model = selectors.model_get(name, user=request.user)
        is_admin = roles.has_role(request.user, roles.ADMIN_ROLES)
        if model.owner_id != request.user.pk and not is_admin:
            raise PermissionDenied("Only the model's owner or an admin may change it.")
        access.require_action(request.user, model, "change it")
        payload = ModelUpdateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        for field in ("owner", "team"):
            if field in payload.validated_data and not is_admin:
                raise PermissionDenied(f"Only an admin may change a model's {field}.")
        services.model_update(model=model, actor=request.user, **payload.validated_data)
        return Response(ModelOutputSerializer(
            selectors.model_get(name, user=request.user), context={"request": request}).data)


class ModelRiskApi(APIView):
    """Set a model's risk tier, with why, and its business use: approvers and admins of its
    team. The tier picks the model's policy when it has none of its own."""

    parser_classes = [JSONParser]
    write_roles = roles.APPROVE_ROLES

    @extend_schema(request=ModelRiskInputSerializer, responses={
        200: ModelOutputSerializer,
        400: OpenApiResponse(description="An unknown `risk_tier`, or no `risk_reason`"),
        403: OpenApiResponse(description="Not an approver or admin of the model's team"),
        404: OpenApiResponse(description="No model with this name that you may see")})
    def post(self, request, name):
        model = selectors.model_get(name, user=request.user)
        payload = ModelRiskInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        services.model_risk_set(model=model, actor=request.user, risk_tier=data["risk_tier"],
                                risk_reason=data.get("risk_reason", ""),
                                business_use=data.get("business_use"))
        return Response(ModelOutputSerializer(
            selectors.model_get(name, user=request.user), context={"request": request}).data)


# --- versions ---------------------------------------------------------------------------------


class AllVersionsListApi(generics.ListAPIView):
    """Every version of every model you may see; filter with `model`, `stage`, ..."""

    read_roles = REGISTRY_READ_ROLES
    serializer_class = VersionOutputSerializer
    filterset_class = ModelVersionFilter
    ordering_fields = ["version", "created_at", "stage", "model__name"]
    ordering_expansions = {"version": ("major", "minor", "patch", "prerelease_key")}

    def get_queryset(self):
        return selectors.version_listing(user=self.request.user)


class StoreUploadMixin:
    """A multipart POST streams its `upload_fields` file parts into the store's `.incoming/`;
    whatever the request did not place in a version folder is removed when it ends."""

    parser_classes = [uploads.StoreMultiPartParser]
    upload_fields: frozenset[str] = frozenset()
    single_parts: frozenset[str] = frozenset()  # refused when sent twice

    def initialize_request(self, request, *args, **kwargs):
        # Before authentication: DRF's CSRF check for session users already reads the body.
        if request.method == "POST" and request.content_type == "multipart/form-data":
            uploads.install(request, self.upload_fields, self.single_parts)
        return super().initialize_request(request, *args, **kwargs)

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            uploads.discard_unplaced(request)


def _may_change_version(user, version) -> None:
    if user.pk not in (version.model.owner_id, version.created_by_id) and not \
            roles.has_role(user, roles.ADMIN_ROLES):
        raise PermissionDenied("Only the model's owner, the version's author or an admin "
                               "may change a version.")
    access.require_action(user, version.model, "change its versions")


class VersionListCreateApi(StoreUploadMixin, AllVersionsListApi):
    """The versions of one model (highest version first); POST registers a new version."""

    upload_fields = FILE_FIELDS
    single_parts = FORM_FIELDS
    # One model's versions: this order walks the (model, major, minor, patch, pre) index.
    ordering = ["-major", "-minor", "-patch", "-prerelease_key"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no URL kwargs
            return ModelVersion.objects.none()
        return selectors.version_listing(user=self.request.user).filter(
            model__name=self.kwargs["name"])

    def list(self, request, *args, **kwargs):
        # 404, not an empty page
        selectors.model_must_exist(self.kwargs["name"], user=request.user)
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": VersionCreateInputSerializer},
        responses={
            201: VersionOutputSerializer,
            400: OpenApiResponse(description="Invalid field (named in `errors`)"),
            409: OpenApiResponse(description="The version is already registered"),
            413: OpenApiResponse(description="Larger than MODEL_MAX_UPLOAD_BYTES"),
            422: OpenApiResponse(description="The model file does not match `sha256`"),
        },
        summary="Register a version (multipart upload)",
    )
    def post(self, request, name):
        # Refuse an unknown model (or another team's) before reading a byte of the upload.
        access.require_action(request.user, selectors.model_get(name, user=request.user),
                              "register versions")
        data, files = request.data, request.FILES
        errors = {}
        for field in sorted(set(data) - FORM_FIELDS - FILE_FIELDS):
            errors[field] = [
                "a version's stage changes only through its transitions endpoint"
                if field == "stage" else
                f"unknown field; a registration sends {', '.join(sorted(FORM_FIELDS))} and "
                f"{' or '.join(sorted(FILE_FIELDS))} file parts"
            ]
        for field in ("version", "framework"):
            if not data.get(field):
                errors[field] = ["This field is required."]
        metadata_part = files.get("metadata")
        try:
            metadata = parse_metadata_text(
                metadata_part.read().decode("utf-8", "replace")
                if metadata_part is not None
                else data.get("metadata")
            )
        except ValidationError as exc:
            errors["metadata"] = exc.detail
        model_parts = files.getlist("file")
        if not model_parts:
            errors["file"] = ["At least one `file` part is required: the model file first."]
        if errors:
            raise ValidationError(errors)

        incoming = [model_parts[0].incoming]
        incoming[0].role = FileRole.MODEL
        for part in files.getlist("preprocessor"):
            part.incoming.role = FileRole.PREPROCESSOR
            incoming.append(part.incoming)
        for part in model_parts[1:]:
            part.incoming.role = FileRole.OTHER
            incoming.append(part.incoming)
        for part in files.getlist("reference"):
            part.incoming.role = FileRole.REFERENCE
            incoming.append(part.incoming)

        version = services.version_register(
            model_name=name,
            version=data["version"],
            framework=data["framework"],
            metadata=metadata,
            files=incoming,
            declared_sha256=data.get("sha256"),
            actor=request.user,
        )
        # The row the service wrote (with its model and author), not read again.
        body = VersionOutputSerializer(version, context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["url"]})


class VersionDetailApi(APIView):
    """One version. Its description and tags may be changed by the model's owner, the
    version's author or an admin."""

    parser_classes = [JSONParser]
    read_roles = REGISTRY_READ_ROLES

    @extend_schema(responses=VersionOutputSerializer)
    def get(self, request, name, version):
        found = selectors.version_get(name, version, user=request.user)
        return Response(VersionOutputSerializer(found, context={"request": request}).data)

    @extend_schema(request=VersionUpdateInputSerializer, responses=VersionOutputSerializer)
    def patch(self, request, name, version):
        found = selectors.version_get(name, version, user=request.user)
        _may_change_version(request.user, found)
        payload = VersionUpdateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        # The row the service changed and locked (with its model and author), not read again.
        changed = services.version_update(version=found, actor=request.user,
                                          **payload.validated_data)
        return Response(VersionOutputSerializer(changed, context={"request": request}).data)


class VersionReferenceApi(StoreUploadMixin, APIView):
    """Add a reference sample to a version that has none: one `reference` part, a CSV file
    with a header row naming (at least) every feature. Monitoring compares live traffic
    with it; validation runs again to predict on its rows."""

    upload_fields = frozenset({"reference"})

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
            "reference": {"type": "string", "format": "binary"}}}},
        responses={201: VersionOutputSerializer,
                   409: OpenApiResponse(description="It already has a reference sample"),
                   422: OpenApiResponse(description="The CSV does not fit the signature")},
        summary="Add a reference sample to a version",
    )
    def post(self, request, name, version):
        found = selectors.version_get(name, version, user=request.user)
        _may_change_version(request.user, found)
        parts = request.FILES.getlist("reference")
        unknown = sorted(set(request.data) - {"reference"})
        if unknown or len(parts) != 1:
            raise ValidationError({unknown[0] if unknown else "reference": [
                "send exactly one `reference` file part (a CSV with a header row)"]})
        services.version_reference_add(version=found, incoming=parts[0].incoming,
                                       actor=request.user)
        body = VersionOutputSerializer(selectors.version_get(name, version, user=request.user),
                                       context={"request": request}).data
        return Response(body, status=status.HTTP_201_CREATED)


IMAGE_TYPES = {".png": ("image/png", b"\x89PNG\r\n\x1a\n"),
               ".jpg": ("image/jpeg", b"\xff\xd8\xff"), ".jpeg": ("image/jpeg", b"\xff\xd8\xff")}


def _image_type(filename: str, handle) -> str | None:
    """The image type of a .png/.jpg file whose first bytes are that format's signature."""
    suffix = "." + filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in IMAGE_TYPES:
        return None
    content_type, signature = IMAGE_TYPES[suffix]
    start = handle.read(len(signature))
    handle.seek(0)
    return content_type if start == signature else None


class VersionFileApi(APIView):
    """Download one file of a version, streamed; its sha256 is in `X-Checksum-SHA256`."""

    read_roles = REGISTRY_READ_ROLES

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiResponse(OpenApiTypes.BINARY,
                                                               description="The file"),
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY,
                                                description="A PNG image, shown inline"),
            (200, "image/jpeg"): OpenApiResponse(OpenApiTypes.BINARY,
                                                 description="A JPEG image, shown inline"),
        },
        description="A file of the version, by its name: a flat name, or `evaluation/<name>` "
                    "for what validation measured. A .png/.jpg file that starts with its "
                    "format's signature is sent inline as that image type; anything else as an "
                    "attachment. Every answer has a strict Content-Security-Policy.",
    )
    def get(self, request, name, version, filename):
        found = selectors.version_get(name, version, user=request.user)
        if not access.may_download(request.user, found):
            raise ApplicationError(f"{name} has no version {version!r} you may download: a "
                                   "service account downloads production versions only",
                                   status_code=404, code="not_found")
        artifact = selectors.file_get(found, filename)
        refused = ApplicationError(
            f"{filename} of {found} is not served: it failed its sha256 check (changed or "
            "missing on disk); an operator has been alerted", status_code=409,
            code="integrity_failed")
        if found.integrity_failed_at is not None:
            raise refused
        try:
            # Hashed, then streamed from the same open file: never bytes that do not match.
            handle = loaders.open_verified(found, artifact)
        except loaders.ArtifactIntegrityError as exc:
            services.version_integrity_failed(version=found, error=exc, found_by="download")
            raise refused from None
        image = _image_type(artifact.filename, handle)
        response = FileResponse(
            handle,
            # An image (a plot of the measured evaluation, an uploaded figure) is shown inline
            # by the admin pages; its bytes start as its type says (checked above).
            as_attachment=image is None,
            filename=artifact.filename.rsplit("/", 1)[-1],
            content_type=image or "application/octet-stream",
        )
        # Whatever a file holds, a browser runs nothing from it and guesses no other type.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        response["X-Content-Type-Options"] = "nosniff"
        response["X-Checksum-SHA256"] = artifact.sha256
        response["ETag"] = f'"{artifact.sha256}"'
        return response
