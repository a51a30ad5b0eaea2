"""The compliance API, under /api/v1/ (config/urls.py)."""

urlpatterns: list = []
