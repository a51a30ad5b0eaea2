"""MLflow's Model Registry REST API (read and aliases) and its artifact download, answered
from our registry. Paths and fields follow mlflow/protos/model_registry.proto; errors are
MLflow's `{"error_code", "message"}`. Authentication: `Authorization: Bearer <token>` (an API
token or a JWT), which MLflow clients send from MLFLOW_TRACKING_TOKEN.
"""

from __future__ import annotations

import posixpath

from django.http import FileResponse, HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core import audit, roles
from core.errors import ApplicationError, Conflict
from core.parsers import JSONParser
from core.permissions import HasRole
from interop import model_dir, rules, search, selectors, services, shapes
from predictions.auth import ApiTokenAuthentication, CachedJWTAuthentication
from registry import loaders
from registry import services as registry_services

ERROR_CODES = {
    400: "INVALID_PARAMETER_VALUE", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST", 405: "BAD_REQUEST", 409: "RESOURCE_CONFLICT",
    413: "INVALID_PARAMETER_VALUE", 415: "BAD_REQUEST", 422: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
}
SEARCH_MODELS_LIMIT = 1000      # MLflow's own maximum for search_registered_models
SEARCH_VERSIONS_LIMIT = 10000   # MlflowClient.search_model_versions asks for this many


def error_body(status_code: int, detail: str) -> dict:
    code = ERROR_CODES.get(status_code, "INTERNAL_ERROR" if status_code >= 500 else "BAD_REQUEST")
    return {"error_code": code, "message": detail}


def not_found_body(status_code: int, detail: str) -> dict:
    return {"error_code": "ENDPOINT_NOT_FOUND", "message": detail}


class MlflowApiView(APIView):
    authentication_classes = [ApiTokenAuthentication, CachedJWTAuthentication]
    permission_classes = [HasRole]
    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    read_roles = roles.READ_ROLES | {roles.SERVICE}
    write_roles = roles.REGISTER_ROLES | roles.APPROVE_ROLES

    def handle_exception(self, exc):
        # The project's handler picks the status (and logs a 500); MLflow's body replaces ours.
        response = super().handle_exception(exc)
        body = response.data if isinstance(response.data, dict) else {}
        message = str(body.get("detail") or "")
        errors = body.get("errors") or {}
        if len(errors) == 1:
            field = next(iter(errors))
            if field and not message.startswith(f"{field}:"):
                message = f"{field}: {message}"
        response.data = error_body(response.status_code, message)
        return response

    @staticmethod
    def param(request, name: str):
        """One argument, from the query string (GET) or the JSON body (MLflow's POST, PATCH,
        DELETE), or None."""
        value = request.query_params.get(name)
        if value is None and isinstance(request.data, dict):
            value = request.data.get(name)
        if value is not None and not isinstance(value, (str, int)):
            raise ApplicationError("must be a string", field=name)
        return None if value is None else str(value)

    @staticmethod
    def param_list(request, name: str) -> list[str]:
        values = request.query_params.getlist(name)
        if not values and isinstance(request.data, dict) and name in request.data:
            values = request.data[name]
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ApplicationError("must be a list of strings", field=name)
        return list(values)

    def required(self, request, name: str) -> str:
        value = self.param(request, name)
        if not value:
            raise ApplicationError(f"Missing value for required parameter '{name}'", field=name)
        return value


class RegisteredModelsSearchApi(MlflowApiView):
    """`registered-models/search`: filter, max_results, order_by, page_token."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        conditions = search.parse_filter(self.param(request, "filter"),
                                         fields=frozenset({"name"}))
        order = search.parse_order(self.param_list(request, "order_by"), default=[("name", False)])
        found = [shapes.registered_model(m) for m in selectors.model_list(user=request.user)]
        found = search.sort([m for m in found if search.matches(m, conditions)], order)
        chunk, token = search.page(found, self.param(request, "max_results"),
                                   self.param(request, "page_token"), limit=SEARCH_MODELS_LIMIT)
        return Response({"registered_models": chunk, "next_page_token": token})


class RegisteredModelGetApi(MlflowApiView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        model = selectors.model_get(self.required(request, "name"), user=request.user)
        return Response({"registered_model": shapes.registered_model(model)})


class RegisteredModelCreateApi(MlflowApiView):
    """`registered-models/create`: MLflow has no task type, so the tag `task_type` names it
    (and `team` the owning team, when the caller has several); other tags with an empty value
    become our labels."""

    write_roles = roles.REGISTER_ROLES

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        name = self.required(request, "name")
        raw_tags = request.data.get("tags", []) if isinstance(request.data, dict) else []
        if not isinstance(raw_tags, list) or not all(
                isinstance(t, dict) and isinstance(t.get("key"), str)
                and isinstance(t.get("value", ""), str) for t in raw_tags):
            raise ApplicationError("a list of {key, value}", field="tags")
        tags = {t["key"]: t.get("value", "") for t in raw_tags}
        task_type, team = tags.pop("task_type", ""), tags.pop("team", None)
        if not task_type:
            raise ApplicationError("give the tag task_type (classification, regression, "
                                   "clustering, ranking or forecasting)", field="tags")
        valued = sorted(key for key, value in tags.items() if value)
        if valued:
            raise ApplicationError(f"tag {valued[0]!r}: only labels (an empty value), "
                                   "task_type and team are kept", field="tags")
        description = self.param(request, "description") or ""
        model = registry_services.model_create(
            name=name, task_type=task_type, owner=request.user, actor=request.user,
            description=description, tags=sorted(tags), team_name=team)
        model = selectors.model_get(model.name, user=request.user)
        return Response({"registered_model": shapes.registered_model(model)})


class LatestVersionsApi(MlflowApiView):
    """`registered-models/get-latest-versions` (MLflow's client POSTs it: a read all the same)."""

    write_roles = MlflowApiView.read_roles

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        model = selectors.model_get(self.required(request, "name"), user=request.user)
        stages = None
        wanted = self.param_list(request, "stages")
        if wanted:
            unknown = [s for s in wanted if s.lower() not in shapes.MLFLOW_TO_STAGE]
            if unknown:
                raise ApplicationError(
                    f"Invalid Model Version stage: {unknown[0]}. Value must be one of None, "
                    "Staging, Production, Archived.", field="stages")
            stages = {shapes.MLFLOW_TO_STAGE[s.lower()] for s in wanted}
        latest = shapes.latest_per_stage(model.versions.all(), stages)
        return Response({"model_versions": [shapes.model_version(v) for v in latest]})

    get = post


class ModelVersionGetApi(MlflowApiView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        version = selectors.version_get(self.required(request, "name"),
                                        self.required(request, "version"), user=request.user)
        return Response({"model_version": shapes.model_version(version)})


class ModelVersionsSearchApi(MlflowApiView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        conditions = search.parse_filter(
            self.param(request, "filter"),
            fields=frozenset({"name", "run_id", "source_path", "version_number"}))
        order = search.parse_order(self.param_list(request, "order_by"),
                                   default=[("name", False), ("version_number", True)])
        found = [shapes.model_version(v) for v in selectors.version_list(user=request.user)]
        found = search.sort([v for v in found if search.matches(v, conditions)], order)
        chunk, token = search.page(found, self.param(request, "max_results"),
                                   self.param(request, "page_token"), limit=SEARCH_VERSIONS_LIMIT)
        return Response({"model_versions": chunk, "next_page_token": token})


def _downloadable(user, version):
    refusal = rules.download_refusal(user, version)
    if refusal:
        raise audit.denied(actor=user, subject=version, attempted="mlflow.download",
                           message=refusal)
    return version


class DownloadUriApi(MlflowApiView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        version = selectors.version_get(self.required(request, "name"),
                                        self.required(request, "version"), user=request.user)
        _downloadable(request.user, version)
        return Response({"artifact_uri": shapes.download_uri(version)})


class AliasApi(MlflowApiView):
    """GET resolves an alias; POST sets one, DELETE deletes one (interop.rules)."""

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request):
        alias = rules.alias_name(self.required(request, "alias"))
        version = selectors.version_by_alias(self.required(request, "name"), alias,
                                             user=request.user)
        return Response({"model_version": shapes.model_version(version)})

    @extend_schema(request=OpenApiTypes.OBJECT, responses=OpenApiTypes.OBJECT)
    def post(self, request):
        version = selectors.version_get(self.required(request, "name"),
                                        self.required(request, "version"), user=request.user)
        outcome = services.alias_set(model=version.model, alias=self.required(request, "alias"),
                                     version=version, actor=request.user)
        if outcome.transition is None:
            return Response({})
        # The alias did not move: an MLflow client must not believe it did, so this is not a
        # 200 (MlflowClient raises on it, showing the message).
        production = next((v for v in version.model.versions.all()
                           if v.stage == "production"), None)
        now = f"version {production.number}" if production else "no version"
        body = {"error_code": "INVALID_STATE"}
        request_row, deployment = outcome.transition.request, outcome.transition.deployment
        if request_row is not None:
            body["message"] = (
                f"'{outcome.alias}' still points at {now}: approval request #{request_row.pk} "
                f"asks to move version {version.number} ({version.version}) to production; the "
                "alias follows once approvers sign it off")
            body["approval_request"] = {"id": request_row.pk, "status": request_row.status,
                                        "from_stage": request_row.from_stage,
                                        "to_stage": request_row.to_stage}
        else:
            body["message"] = (
                f"'{outcome.alias}' still points at {now}: deployment #{deployment.pk} moves "
                f"version {version.number} ({version.version}) to production; the alias "
                "follows when it completes")
            body["deployment"] = {"id": deployment.pk, "status": deployment.status}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def delete(self, request):
        model = selectors.model_get(self.required(request, "name"), user=request.user)
        services.alias_delete(model=model, alias=self.required(request, "alias"),
                              actor=request.user)
        return Response({})


def _artifact_target(path: str, user):
    """(version, path inside its directory) for `registry/<name>/<number>[/<path>]`."""
    parts = [p for p in path.strip("/").split("/") if p]
    if any(p in {".", ".."} or "\\" in p for p in parts):
        raise ApplicationError("a relative path without '..'", field="path")
    if len(parts) < 3 or parts[0] != shapes.ARTIFACT_ROOT:
        raise ApplicationError(f"No artifacts at {path!r}: ask for registry/<name>/<version>",
                               status_code=404, code="not_found")
    version = selectors.version_get(parts[1], parts[2], user=user)
    return _downloadable(user, version), "/".join(parts[3:])


class ArtifactListApi(MlflowApiView):
    """`GET /api/2.0/mlflow-artifacts/artifacts?path=registry/<name>/<number>[/folder]`."""

    @extend_schema(operation_id="mlflow_artifacts_list", responses=OpenApiTypes.OBJECT)
    def get(self, request):
        version, inner = _artifact_target(self.param(request, "path") or "", request.user)
        files = model_dir.listing(model_dir.entries(version), inner)
        if files is None:
            raise ApplicationError(f"No artifacts at {inner!r} in version {version.number}",
                                   status_code=404, code="not_found")
        return Response({"files": files})


class ArtifactDownloadApi(MlflowApiView):
    """`GET /api/2.0/mlflow-artifacts/artifacts/registry/<name>/<number>/<file>`: a generated
    file, or one of the version's files streamed after its sha256 is checked."""

    renderer_classes = [JSONRenderer]

    @extend_schema(operation_id="mlflow_artifacts_download",
                   responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request, path):
        version, inner = _artifact_target(path, request.user)
        entry = model_dir.entries(version).get(inner)
        if entry is None:
            raise ApplicationError(f"No file {inner!r} in version {version.number}",
                                   status_code=404, code="not_found")
        if entry.content is not None:
            response = HttpResponse(entry.content, content_type="application/octet-stream")
        else:
            refused = Conflict(f"{entry.artifact.filename} of {version} is not served: it "
                               "failed its sha256 check; an operator has been alerted",
                               code="integrity_failed")
            try:
                handle = loaders.open_verified(version, entry.artifact)
            except loaders.ArtifactIntegrityError as exc:
                registry_services.version_integrity_failed(version=version, error=exc,
                                                           found_by="mlflow download")
                raise refused from None
            response = FileResponse(handle, content_type="application/octet-stream")
            response["X-Checksum-SHA256"] = entry.artifact.sha256
        response["Content-Disposition"] = f'attachment; filename="{posixpath.basename(inner)}"'
        return response


def endpoint_not_found(request, *args, **kwargs):
    return JsonResponse(not_found_body(404, f"no MLflow endpoint at {request.path}"), status=404)
