"""/metrics speaks Prometheus: connect answers and latency as counted, and the
cloud's state as the database holds it."""

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.factories import Desk

pytestmark = pytest.mark.django_db


def scrape(client) -> dict:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_connects_and_read_pool_levels(client):
    desk = Desk.build(ready=2)
    before = scrape(client)
    thin = APIClient()
    thin.post("/api/thin-client/v1/connect", desk.connect_body(), format="json")
    thin.post("/api/thin-client/v1/connect", desk.connect_body(password="wrong"), format="json")

    after = scrape(client)

    for outcome in ("ready", "invalid_credentials"):
        grew = value(after, "deskops_connects_total", outcome=outcome) - value(
            before, "deskops_connects_total", outcome=outcome
        )
        assert grew == 1, outcome
    assert (
        value(after, "deskops_connect_seconds_count")
        - value(before, "deskops_connect_seconds_count")
        == 2
    )
    pool = desk.pool.name
    assert value(after, "deskops_vms", pool=pool, state="ready") == 1
    assert value(after, "deskops_vms", pool=pool, state="in_use") == 1
    assert value(after, "deskops_pool_target_ready", pool=pool) == 2
    assert value(after, "deskops_sessions_open") == 1


def test_metrics_are_only_for_the_monitoring_network(client, settings):
    settings.METRICS_ALLOWED_NETWORKS = ["10.9.0.0/16"]
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", REMOTE_ADDR="10.9.1.2").status_code == 200
