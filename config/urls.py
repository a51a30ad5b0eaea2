from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from health_check.views import HealthCheckView

import compliance.urls
import governance.urls
import interop.urls
import monitoring.urls
import predictions.urls
import registry.urls
from core.errors import not_found_body, unknown_endpoint
from predictions.mlflow_scoring import error_body as mlflow_error_body
from predictions.oip import error_body as oip_error_body

api_v1 = [*registry.urls.urlpatterns, *governance.urls.urlpatterns,
          *compliance.urls.urlpatterns, *predictions.urls.urlpatterns,
          *monitoring.urls.urlpatterns]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"))),
    *predictions.urls.oip_urlpatterns,
    # MLflow's Model Registry API at MLflow's own paths (before the ^api/ catch-all).
    *interop.urls.urlpatterns,
    *predictions.urls.mlflow_urlpatterns,
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # A browser that is not logged in is sent to the admin's login page, then back here.
    path(
        "api/docs/",
        login_required(SpectacularSwaggerView.as_view(url_name="schema")),
        name="api-docs",
    ),
    path(
        "health/",
        HealthCheckView.as_view(
            checks=[
                "health_check.checks.Database",
                "health_check.checks.Cache",
                "registry.health.ArtifactStore",
                "core.health.Broker",
                "registry.health.ArtifactIntegrity",
            ]
        ),
        name="health",
    ),
    # Last: any other path under the APIs is a JSON 404 in that API's error shape.
    re_path(r"^api/", unknown_endpoint(not_found_body), name="api-unknown"),
    re_path(r"^v2(?:/|$)", unknown_endpoint(oip_error_body), name="v2-unknown"),
    re_path(r"^mlflow(?:/|$)", unknown_endpoint(mlflow_error_body), name="mlflow-unknown"),
]
