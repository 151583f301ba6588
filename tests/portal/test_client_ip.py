"""The client's address behind reverse proxies: X-Forwarded-For is believed only
from a trusted proxy, read from the right, and nothing a client sends there can
forge its address or break a request."""

import pytest
from django.core.cache import cache
from django.test import RequestFactory
from rest_framework.test import APIClient

from allocation.models import Terminal
from portal.client_ip import client_ip
from portal.models import AuditEvent
from tests.factories import PASSWORD, Desk, UserFactory
from tests.helpers import settings_in_fresh_interpreter

PROXY = "10.0.0.5"


@pytest.fixture
def behind_proxy(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24", "2001:db8::/64"]


def ip(remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_ip(RequestFactory().get("/", **extra))


def test_without_trusted_proxies_the_peer_is_the_client(settings):
    settings.TRUSTED_PROXIES = []
    assert ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"


def test_an_untrusted_peer_cannot_spoof_its_address(behind_proxy):
    assert ip("203.0.113.7", "198.51.100.1") == "203.0.113.7"
    assert ip("203.0.113.7", "10.0.0.9") == "203.0.113.7"


def test_a_trusted_proxy_gives_the_client_it_saw(behind_proxy):
    assert ip(PROXY, "198.51.100.1") == "198.51.100.1"


def test_the_right_most_untrusted_hop_wins_over_what_the_client_wrote(behind_proxy):
    # The client forged the first hop; the proxy appended the real peer.
    assert ip(PROXY, "1.2.3.4, 198.51.100.1") == "198.51.100.1"
    # Two trusted proxies in a row are skipped.
    assert ip(PROXY, "1.2.3.4, 198.51.100.1, 10.0.0.7") == "198.51.100.1"


def test_a_chain_of_only_proxies_gives_the_farthest_proxy(behind_proxy):
    assert ip(PROXY, "10.0.0.8, 10.0.0.7") == "10.0.0.8"


def test_ipv6_and_mapped_ipv4_addresses(behind_proxy):
    assert ip("2001:db8::2", "2001:db8:1::9") == "2001:db8:1::9"
    assert ip("::ffff:10.0.0.5", "198.51.100.1") == "198.51.100.1"
    assert ip(PROXY, "[2001:db8:1::9]:443") == "2001:db8:1::9"


@pytest.mark.parametrize(
    "forwarded",
    [
        "",
        "not-an-address",
        "198.51.100.1, garbage",
        ",,, ,",
        "999.1.1.1",
        "\x00\x01",
        "1.2.3.4" + ", 10.0.0.7" * 500,
        "x" * 10000,
    ],
)
def test_garbage_never_raises_and_never_gives_a_made_up_address(behind_proxy, forwarded):
    # A malformed hop next to the proxy stops the walk at the proxy itself.
    assert ip(PROXY, forwarded) in (PROXY, "10.0.0.7")


def test_a_malformed_hop_further_left_does_not_hide_the_real_client(behind_proxy):
    assert ip(PROXY, "garbage, 198.51.100.1") == "198.51.100.1"


def test_a_peer_without_an_ip_address_gives_none(behind_proxy):
    assert ip("", "198.51.100.1") is None
    assert ip("unix:/run/deskops.sock", "198.51.100.1") is None


@pytest.mark.django_db
def test_the_audit_trail_records_the_forwarded_client(client, behind_proxy):
    UserFactory(username="olga", role="operator")
    response = client.post(
        "/login/",
        {"username": "olga", "password": PASSWORD},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="6.6.6.6, 198.51.100.20",
    )
    assert response.status_code == 302
    assert AuditEvent.objects.get(action="login").source_ip == "198.51.100.20"


@pytest.mark.django_db
def test_the_staff_lockout_counts_per_client_not_per_proxy(client, settings, behind_proxy):
    cache.clear()
    settings.STAFF_LOGIN_FAILURES_PER_ADDRESS = 2
    settings.STAFF_LOGIN_FAILURES_PER_USER = 100
    UserFactory(username="olga", role="operator")

    def attempt(forwarded, password=PASSWORD + "-wrong"):
        return client.post(
            "/login/",
            {"username": "olga", "password": password},
            REMOTE_ADDR=PROXY,
            HTTP_X_FORWARDED_FOR=forwarded,
        )

    attempt("198.51.100.1")
    attempt("198.51.100.1")
    locked = attempt("198.51.100.1", PASSWORD)
    assert "Too many failed logins" in locked.content.decode()
    # Another client behind the same proxy is not locked out with the first.
    assert attempt("198.51.100.2", PASSWORD).status_code == 302
    cache.clear()


@pytest.mark.django_db
def test_the_thin_client_source_address_is_the_forwarded_one(behind_proxy):
    desk = Desk.build(ready=1)
    response = APIClient().post(
        "/api/thin-client/v1/connect",
        desk.connect_body(),
        format="json",
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR="garbage, 198.51.100.30",
    )
    assert response.status_code == 200, response.content
    assert Terminal.objects.get(pk=desk.terminal.pk).last_ip == "198.51.100.30"


@pytest.mark.django_db
def test_a_spoofed_header_from_an_untrusted_peer_is_not_recorded(behind_proxy):
    desk = Desk.build(ready=1)
    response = APIClient().post(
        "/api/thin-client/v1/connect",
        desk.connect_body(),
        format="json",
        REMOTE_ADDR="203.0.113.9",
        HTTP_X_FORWARDED_FOR="198.51.100.30",
    )
    assert response.status_code == 200, response.content
    assert Terminal.objects.get(pk=desk.terminal.pk).last_ip == "203.0.113.9"


@pytest.mark.django_db
def test_metrics_through_the_proxy_are_allowed_only_to_the_monitoring_network(
    client, settings, behind_proxy
):
    settings.METRICS_ALLOWED_NETWORKS = ["192.0.2.0/24"]
    through_proxy = {"REMOTE_ADDR": PROXY}
    assert (
        client.get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.1", **through_proxy).status_code
        == 403
    )
    assert (
        client.get("/metrics", HTTP_X_FORWARDED_FOR="192.0.2.10", **through_proxy).status_code
        == 200
    )


def test_a_wrong_trusted_proxy_entry_stops_the_process():
    result = settings_in_fresh_interpreter(
        "s.TRUSTED_PROXIES", TRUSTED_PROXIES="10.0.0.0/8,nonsense"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "nonsense" in result.stderr


def test_trusted_proxies_are_read_from_the_environment():
    result = settings_in_fresh_interpreter(
        "s.TRUSTED_PROXIES", TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['127.0.0.1', '10.0.0.0/8']"
