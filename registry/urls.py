from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from registry import apis

# Mounted under /api/v1/ in the `api` namespace (see config/urls.py).
urlpatterns = [
    path("", apis.ApiRootApi.as_view(), name="root"),
    path("auth/token/", TokenObtainPairView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    path("models/", apis.ModelListCreateApi.as_view(), name="model-list"),
    path("models/<str:name>/", apis.ModelDetailApi.as_view(), name="model-detail"),
    path("models/<str:name>/risk/", apis.ModelRiskApi.as_view(), name="model-risk"),
    path(
        "models/<str:name>/versions/",
        apis.VersionListCreateApi.as_view(),
        name="version-list",
    ),
    path(
        "models/<str:name>/versions/<str:version>/",
        apis.VersionDetailApi.as_view(),
        name="version-detail",
    ),
    path(
        "models/<str:name>/versions/<str:version>/files/<path:filename>",
        apis.VersionFileApi.as_view(),
        name="version-file",
    ),
    path(
        "models/<str:name>/versions/<str:version>/reference/",
        apis.VersionReferenceApi.as_view(),
        name="version-reference",
    ),
    path("versions/", apis.AllVersionsListApi.as_view(), name="all-versions"),
]
