from django.urls import path

from predictions import apis, mlflow_scoring, oip

# Mounted under /api/v1/ in the `api` namespace (see config/urls.py).
urlpatterns = [
    path("models/<str:name>/predict/", apis.PredictApi.as_view(), name="predict"),
    path("models/<str:name>/versions/<str:version>/predict/", apis.PredictApi.as_view(),
         name="version-predict"),
    path("predictions/<str:request_id>/feedback/", apis.FeedbackApi.as_view(),
         name="prediction-feedback"),
]

# The Open Inference Protocol, mounted at the root (/v2/...).
oip_urlpatterns = [
    path("v2", oip.ServerMetadataApi.as_view(), name="v2-server"),
    path("v2/health/live", oip.LiveApi.as_view(), name="v2-live"),
    path("v2/health/ready", oip.ReadyApi.as_view(), name="v2-ready"),
    path("v2/models/<str:name>", oip.ModelMetadataApi.as_view(), name="v2-model"),
    path("v2/models/<str:name>/ready", oip.ModelReadyApi.as_view(), name="v2-model-ready"),
    path("v2/models/<str:name>/infer", oip.InferApi.as_view(), name="v2-infer"),
    path("v2/models/<str:name>/versions/<str:version>", oip.ModelMetadataApi.as_view(),
         name="v2-version"),
    path("v2/models/<str:name>/versions/<str:version>/ready", oip.ModelReadyApi.as_view(),
         name="v2-version-ready"),
    path("v2/models/<str:name>/versions/<str:version>/infer", oip.InferApi.as_view(),
         name="v2-version-infer"),
]

# MLflow's scoring protocol (`mlflow models serve`), mounted at the root.
mlflow_urlpatterns = [
    path("invocations", mlflow_scoring.InvocationsApi.as_view(), name="mlflow-invocations"),
    path("ping", mlflow_scoring.PingApi.as_view(), name="mlflow-ping"),
    path("version", mlflow_scoring.VersionApi.as_view(), name="mlflow-version"),
    path("mlflow/<str:name>/invocations", mlflow_scoring.InvocationsApi.as_view(),
         name="mlflow-model-invocations"),
    path("mlflow/<str:name>/ping", mlflow_scoring.ModelPingApi.as_view(),
         name="mlflow-model-ping"),
    path("mlflow/<str:name>/version", mlflow_scoring.VersionApi.as_view(),
         name="mlflow-model-version"),
]
