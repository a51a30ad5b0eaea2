from django.urls import path

from governance import apis

# Mounted under /api/v1/ in the `api` namespace (see config/urls.py).
urlpatterns = [
    path("models/<str:name>/versions/<str:version>/transitions/", apis.TransitionApi.as_view(),
         name="version-transitions"),
    path("models/<str:name>/versions/<str:version>/validations/",
         apis.ValidationListApi.as_view(), name="version-validations"),
    path("models/<str:name>/versions/<str:version>/validations/<id:pk>/log",
         apis.ValidationLogApi.as_view(), name="validation-log"),
    path("models/<str:name>/rollback/", apis.RollbackApi.as_view(), name="model-rollback"),
    path("models/<str:name>/rollout/", apis.RolloutApi.as_view(), name="model-rollout"),
    path("models/<str:name>/rollout/advance", apis.RolloutAdvanceApi.as_view(),
         name="model-rollout-advance"),
    path("models/<str:name>/rollout/abort", apis.RolloutAbortApi.as_view(),
         name="model-rollout-abort"),
    path("approvals/", apis.ApprovalListApi.as_view(), name="approval-list"),
    path("approvals/<id:pk>/", apis.ApprovalDetailApi.as_view(), name="approval-detail"),
    path("approvals/<id:pk>/approve", apis.ApprovalDecisionApi.as_view(decision="approve"),
         name="approval-approve"),
    path("approvals/<id:pk>/reject", apis.ApprovalDecisionApi.as_view(decision="reject"),
         name="approval-reject"),
    path("deployments/", apis.DeploymentListApi.as_view(), name="deployment-list"),
    path("deployments/<id:pk>/", apis.DeploymentDetailApi.as_view(), name="deployment-detail"),
    path("audit/", apis.AuditListApi.as_view(), name="audit-list"),
    path("audit/report/", apis.AuditReportApi.as_view(), name="audit-report"),
]
