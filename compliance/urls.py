"""The compliance API, under /api/v1/ (config/urls.py)."""

from django.urls import path

from compliance import apis_cards, apis_inventory, apis_trace

urlpatterns: list = [
    # Before predictions' own predictions/<request_id>/... routes (config/urls.py).
    path("predictions/<str:request_id>/trace", apis_trace.PredictionTraceApi.as_view(),
         name="prediction-trace"),
    path("models/<str:name>/versions/<str:version>/card/", apis_cards.VersionCardApi.as_view(),
         name="version-card"),
    path("inventory/", apis_inventory.InventoryApi.as_view(), name="inventory"),
    path("models/<str:name>/versions/<str:version>/reviews/",
         apis_inventory.VersionReviewsApi.as_view(), name="version-reviews"),
]
