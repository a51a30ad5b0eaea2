"""The admin as "Model governance": its home page is a dashboard of what needs the person
logged in (config/dashboard.py), with the list of every page below it."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class GovernanceAdminSite(admin.AdminSite):
    site_header = "Model governance"
    site_title = "Model governance"
    index_title = "Dashboard"
    index_template = "admin/dashboard.html"
    site_url = None  # "/" is this admin: no "View site" link
    # The home page and the breadcrumbs lead everywhere; the sidebar's 300 px are the lists'
    # (every list fits 1366 px: tests/e2e/test_browser_pages.py).
    enable_nav_sidebar = False

    def index(self, request, extra_context=None):
        # Imported here: INSTALLED_APPS imports this module before any model is loaded.
        from config import dashboard

        return super().index(request, {**dashboard.build(request.user),
                                       **(extra_context or {})})


class GovernanceAdminConfig(AdminConfig):
    """`django.contrib.admin` with this site as `admin.site` (INSTALLED_APPS names this)."""

    default_site = "config.admin_site.GovernanceAdminSite"
