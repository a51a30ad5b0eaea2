from django.urls import path, re_path

from interop import apis

# Mounted at the site's root by config/urls.py, before the `^api/` catch-all, as MLflow's
# tracking server serves them: MLflow clients build these paths from the tracking URI.
MLFLOW = "api/2.0/mlflow/"
urlpatterns = [
    path(MLFLOW + "registered-models/search", apis.RegisteredModelsSearchApi.as_view(),
         name="mlflow-models-search"),
    path(MLFLOW + "registered-models/create", apis.RegisteredModelCreateApi.as_view(),
         name="mlflow-model-create"),
    path(MLFLOW + "registered-models/get", apis.RegisteredModelGetApi.as_view(),
         name="mlflow-model-get"),
    path(MLFLOW + "registered-models/get-latest-versions", apis.LatestVersionsApi.as_view(),
         name="mlflow-latest-versions"),
    path(MLFLOW + "registered-models/alias", apis.AliasApi.as_view(), name="mlflow-alias"),
    path(MLFLOW + "model-versions/get", apis.ModelVersionGetApi.as_view(),
         name="mlflow-version-get"),
    path(MLFLOW + "model-versions/search", apis.ModelVersionsSearchApi.as_view(),
         name="mlflow-versions-search"),
    path(MLFLOW + "model-versions/get-download-uri", apis.DownloadUriApi.as_view(),
         name="mlflow-download-uri"),
    path("api/2.0/mlflow-artifacts/artifacts", apis.ArtifactListApi.as_view(),
         name="mlflow-artifacts-list"),
    path("api/2.0/mlflow-artifacts/artifacts/<path:path>", apis.ArtifactDownloadApi.as_view(),
         name="mlflow-artifact"),
    # Anything else MLflow's client may ask (runs, experiments, writes): its own 404 body.
    re_path(r"^api/2\.0/mlflow(?:-artifacts)?/", apis.endpoint_not_found,
            name="mlflow-unknown"),
]
