"""The 404 and 500 pages are the project's: its name, a way back, and no traceback."""

from __future__ import annotations

import pytest
from django.test import RequestFactory
from django.views import defaults

pytestmark = pytest.mark.django_db


def test_an_unknown_page_is_the_projects_not_found_page(client, approver):
    client.force_login(approver)
    response = client.get("/no-such-page/<script>/")
    assert response.status_code == 404
    text = response.content.decode()
    assert "Model governance" in text and 'href="/admin/"' in text
    assert "<code>/no-such-page/%3Cscript%3E/</code>" in text  # quoted by Django
    assert "Django" not in text and "Traceback" not in text


def test_a_server_error_is_the_projects_page_without_a_traceback():
    response = defaults.server_error(RequestFactory().get("/admin/"))
    assert response.status_code == 500
    text = response.content.decode()
    assert "Model governance" in text and "X-Request-ID" in text
    assert "Traceback" not in text and "Server Error (500)" not in text
