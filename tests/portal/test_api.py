"""The API as a whole: its OpenAPI schema builds, and errors leave as JSON."""

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_the_openapi_schema_builds_and_documents_connect(client):
    client.force_login(UserFactory(role="viewer"))
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    connect = schema["paths"]["/api/thin-client/v1/connect"]["post"]
    assert {"200", "202", "400", "401", "403", "503"} <= set(connect["responses"])
    alerts = schema["paths"]["/api/v1/alerts/"]["get"]
    assert {"status", "kind", "severity", "page"} <= {p["name"] for p in alerts["parameters"]}
    assert "post" in schema["paths"]["/api/v1/alerts/{id}/acknowledge/"]
    assert "post" in schema["paths"]["/api/v1/alerts/{id}/close/"]


@pytest.mark.parametrize(
    "failure, status, error",
    [
        (OperationalError("could not connect to server"), 503, "service_unavailable"),
        (RuntimeError("a bug"), 500, "internal_error"),
    ],
)
def test_failures_inside_the_api_still_answer_json(monkeypatch, failure, status, error):
    def fail(**kwargs):
        raise failure

    monkeypatch.setattr("allocation.api.thin_client.views.desktop_connect", fail)
    response = APIClient().post(
        "/api/thin-client/v1/connect",
        {"username": "a", "password": "b", "terminal": "c"},
        format="json",
    )
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"] == error
