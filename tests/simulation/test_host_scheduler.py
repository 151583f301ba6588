"""The scheduler simulation on real hosts: the command and the host page's
"CPU scheduling (simulated)" section."""

import re

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.urls import reverse

from cloud.models import Host
from simulation import credit_hosts
from simulation.credit_hosts import host_mix
from tests.factories import (
    FeatureClassFactory,
    RegionFactory,
    UserFactory,
    VMFactory,
    VMPoolFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def busy_host(settings):
    settings.SCHEDULER_SIM_SECONDS = 1.0
    region = RegionFactory(hosts=0)
    host = Host.objects.create(region=region, name="cmp-7", vcpus=4)
    vip = FeatureClassFactory(
        name="vip-agent", label="VIP agent", weight=3.0, urgency=3, boost_factor=3
    )
    agent = FeatureClassFactory(name="agent", label="Agent", weight=2.0, urgency=2, boost_factor=1)
    for feature_class, count, state in ((vip, 3, "in_use"), (agent, 6, "ready")):
        pool = VMPoolFactory(region=region, feature_class=feature_class, vcpus=2)
        for _ in range(count):
            VMFactory(pool=pool, host_name=host.name, state=state)
    # Not booted, or on another host: not in the mix.
    VMFactory(pool=pool, host_name=host.name, state="building")
    VMFactory(pool=pool, host_name="cmp-8", state="in_use")
    return host


def test_a_hosts_mix_counts_its_booted_vms_by_class(busy_host):
    mix = host_mix(busy_host)
    assert [(e.feature_class.name, e.vcpus, e.workload.name, e.count) for e in mix] == [
        ("vip-agent", 2, "interactive", 3),
        ("agent", 2, "interactive", 6),
    ]
    assert mix[0].feature_class.boost_factor == 3 and mix[0].feature_class.xen_weight == 768


def test_a_hosts_mix_takes_two_queries_however_many_vms(busy_host, django_assert_num_queries):
    # The counts are grouped by the database; the classes come in one more query.
    with django_assert_num_queries(2):
        mix = host_mix(busy_host)
    assert sum(e.count for e in mix) == 9


def test_a_host_without_booted_vms_has_an_empty_mix(django_assert_num_queries):
    host = Host.objects.create(region=RegionFactory(hosts=0), name="cmp-empty", vcpus=4)
    with django_assert_num_queries(1):
        assert host_mix(host) == []


def test_the_command_prints_both_variants_of_the_default_mix(tmp_path):
    out = tmp_path / "out.txt"
    svg = tmp_path / "charts" / "scheduler.svg"
    with out.open("w") as stream:
        call_command("simulate_scheduler", "--seconds", "2", "--svg", str(svg), stdout=stream)
    text = out.read_text()
    for label in ("VIP agent", "Agent", "Supervisor", "Background batch"):
        assert re.search(rf"^{label}\s+\d", text, re.M), label
    assert "8 CPUs, 44 vCPUs, 2 s" in text
    drawing = svg.read_text()
    assert drawing.startswith("<svg xmlns=") and "<script" not in drawing
    assert "VIP agent" in drawing and "Credit" in drawing and "BOOST" in drawing


def test_the_command_simulates_a_host(busy_host, capsys):
    call_command("simulate_scheduler", "--host", "cmp-7", "--seconds", "1")
    text = capsys.readouterr().out
    assert "Host cmp-7" in text and "4 CPUs, 18 vCPUs" in text
    assert re.search(r"^VIP agent\s+3\s+6", text, re.M)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--host", "nowhere"], "no host"),
        (["--mix", "vip-agent:2:gaming:1"], "workload must be"),
        (["--mix", "ghost:2:batch:1"], "unknown feature class"),
        (["--seconds", "0"], "--seconds"),
        (["--pcpus", "0"], "--pcpus"),
    ],
)
def test_the_command_refuses_bad_input_clearly(arguments, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate_scheduler", *arguments)


def test_the_host_page_loads_the_section_after_the_page(busy_host, client):
    client.force_login(UserFactory(role="viewer"))
    response = client.get(reverse("pools:host-edit", args=[busy_host.pk]))
    page = response.content.decode()
    assert "CPU scheduling (simulated)" in page
    assert f'hx-get="{reverse("simulation:host-scheduler", args=[busy_host.pk])}"' in page


def test_the_section_draws_the_chart_and_the_table(busy_host, client):
    client.force_login(UserFactory(role="viewer"))
    response = client.get(reverse("simulation:host-scheduler", args=[busy_host.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and "Scheduling latency" in html
    rows = re.findall(r"<tr><td>([^<]+)</td><td>(\d+)</td><td>(\d+)</td>", html)
    assert rows == [("VIP agent", "3", "6"), ("Agent", "6", "12")]


def test_the_section_is_computed_once_per_mix(busy_host, client, monkeypatch):
    calls = []
    real_compare = credit_hosts.compare

    def counting(*args, **kwargs):
        calls.append(1)
        return real_compare(*args, **kwargs)

    monkeypatch.setattr(credit_hosts, "compare", counting)
    client.force_login(UserFactory(role="viewer"))
    url = reverse("simulation:host-scheduler", args=[busy_host.pk])
    client.get(url)
    client.get(url)
    assert len(calls) == 1
    # A changed mix is simulated again.
    VMFactory(pool=busy_host.region.pools.first(), host_name=busy_host.name, state="in_use")
    client.get(url)
    assert len(calls) == 2


def test_the_section_says_why_when_there_is_nothing_to_simulate(client):
    region = RegionFactory(hosts=0)
    empty = Host.objects.create(region=region, name="cmp-empty", vcpus=8)
    client.force_login(UserFactory(role="viewer"))
    response = client.get(reverse("simulation:host-scheduler", args=[empty.pk]))
    assert response.status_code == 200 and b"nothing to simulate" in response.content
    assert client.get(reverse("simulation:host-scheduler", args=[99999])).status_code == 404
