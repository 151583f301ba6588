"""The API as a whole: its OpenAPI schema builds, and errors leave as JSON."""

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_builds_and_documents_connect(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    connect = schema["paths"]["/api/thin-client/v1/connect"]["post"]
    assert {"200", "202", "400", "401", "403", "503"} <= set(connect["responses"])


def test_a_database_outage_is_a_503_in_json(monkeypatch):
    def down(**kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr("allocation.api.views.desktop_connect", down)
    response = APIClient().post(
        "/api/thin-client/v1/connect",
        {"username": "a", "password": "b", "terminal": "c"},
        format="json",
    )
    assert response.status_code == 503
    assert response.json()["error"] == "service_unavailable"
    assert response["Retry-After"] == "5"


def test_an_unexpected_error_is_still_json(monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("allocation.api.views.desktop_connect", broken)
    response = APIClient().post(
        "/api/thin-client/v1/connect",
        {"username": "a", "password": "b", "terminal": "c"},
        format="json",
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "detail": "An unexpected error happened; it has been logged.",
    }
