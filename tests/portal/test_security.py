"""What the portal does to stay safe: API docs for staff only and with no CDN,
secure cookies and HSTS in production, strict headers everywhere."""

import pytest

from tests.factories import UserFactory
from tests.helpers import settings_in_fresh_interpreter

pytestmark = pytest.mark.django_db


def test_the_api_schema_and_docs_are_for_staff_only(client):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
    client.force_login(UserFactory(username="alice"))  # a thin-client user
    assert client.get("/api/schema/").status_code == 403
    assert client.get("/api/docs/").status_code == 403
    client.force_login(UserFactory(role="viewer"))
    assert client.get("/api/schema/").status_code == 200


def test_the_api_docs_load_their_assets_from_the_portal_itself(client):
    client.force_login(UserFactory(role="viewer"))
    page = client.get("/api/docs/").content.decode()
    assert "swagger-ui" in page
    assert "cdn." not in page and "unpkg" not in page and "https://" not in page
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page


def test_pages_come_with_strict_headers(client):
    client.force_login(UserFactory(role="viewer"))
    response = client.get("/pools/")
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"


def test_the_portal_loads_htmx_from_its_own_static_files(client):
    client.force_login(UserFactory(role="viewer"))
    page = client.get("/").content.decode()
    assert '<script src="/static/django_htmx/htmx' in page
    assert "https://" not in page


def test_production_sends_cookies_over_https_only_and_hsts(tmp_path):
    result = settings_in_fresh_interpreter(
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_HTTPONLY",
        DESKOPS_VAR_DIR=str(tmp_path),
        DESKOPS_PRODUCTION="true",
        DJANGO_SECRET_KEY="k" * 50,
        DJANGO_ALLOWED_HOSTS="deskops.example.com",
        DESKOPS_CREDENTIALS_KEY="c" * 40,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "31536000", "True", "True"]


def test_a_production_https_request_gets_hsts(settings, client):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert client.get("/healthz").status_code == 301  # plain HTTP is sent to HTTPS
    response = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    assert response["Strict-Transport-Security"].startswith("max-age=31536000")


def test_favicon_ico_points_at_the_portals_icon(client):
    # The Django admin's pages name no icon, so browsers ask for /favicon.ico.
    response = client.get("/favicon.ico")
    assert response.status_code == 302 and response["Location"] == "/static/favicon.svg"


def test_no_page_fails_on_a_nul_character_in_the_query_string(client):
    # PostgreSQL refuses NUL in text; a crafted link must not turn into a 500.
    from tests.portal.test_role_matrix import API, PAGES, _url

    client.force_login(UserFactory(role="administrator"))
    for name in sorted(PAGES) + sorted(API):
        url = _url(name)
        for query in ("q=%00", "user=%00&terminal=%00", "object_id=%00&actor=%00", "next=%00"):
            response = client.get(f"{url}?{query}")
            assert response.status_code == 400, f"{url}?{query} answered {response.status_code}"
