from django.urls import path

from monitoring import apis

# Mounted under /api/v1/ in the `api` namespace (see config/urls.py).
urlpatterns = [
    path("models/<str:name>/monitoring/", apis.ModelMonitoringApi.as_view(),
         name="model-monitoring"),
    path("alerts/", apis.AlertListApi.as_view(), name="alert-list"),
    path("alerts/<id:pk>/", apis.AlertDetailApi.as_view(), name="alert-detail"),
    path("alerts/<id:pk>/acknowledge", apis.AlertActionApi.as_view(action="acknowledge"),
         name="alert-acknowledge"),
    path("alerts/<id:pk>/resolve", apis.AlertActionApi.as_view(action="resolve"),
         name="alert-resolve"),
    path("alert-rules/", apis.AlertRuleListApi.as_view(), name="alert-rule-list"),
    path("alert-rules/<id:pk>/", apis.AlertRuleDetailApi.as_view(), name="alert-rule-detail"),
]
