"""The host agent (agent/deskops_host_agent.py) runs for real, as a process on the
loopback, and the portal polls it: figures land on the host, failures are named."""

import json
import os
import selectors
import shutil
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from cloud.agents import hosts_poll_agents
from cloud.models import Host
from cloud.services import regions_sync_hosts
from tests.factories import RegionFactory

pytestmark = pytest.mark.django_db

AGENT = Path(__file__).resolve().parents[2] / "agent" / "deskops_host_agent.py"
TOKEN = "agent-test-token-7f3a"
# The agent must run on the compute nodes' Python (3.9+): point this at another
# interpreter to test it there.
AGENT_PYTHON = os.environ.get("DESKOPS_AGENT_PYTHON", sys.executable)


class RunningAgent:
    def __init__(self, process: subprocess.Popen, port: int):
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def _first_line(process: subprocess.Popen, timeout: float = 15.0) -> str:
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if selector.select(timeout=timeout):
            return process.stdout.readline()
    return ""


@pytest.fixture
def start_agent(tmp_path):
    """Start the real agent script on 127.0.0.1, on a free port the kernel picks."""
    started = []

    def start(*, token: str = TOKEN, disk_dir: Path | None = None) -> RunningAgent:
        disk_dir = disk_dir or tmp_path / f"disk-{len(started)}"
        disk_dir.mkdir(exist_ok=True)
        process = subprocess.Popen(
            [AGENT_PYTHON, str(AGENT), "--listen", "127.0.0.1:0", "--disk-dir", str(disk_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "DESKOPS_AGENT_TOKEN": token},
        )
        line = _first_line(process)
        if not line:
            process.kill()
            pytest.fail(f"the agent did not start: {process.stderr.read()}")
        agent = RunningAgent(process, json.loads(line)["port"])
        started.append(agent)
        return agent

    yield start
    for agent in started:
        agent.stop()


# The loopback, never through a proxy the environment may name.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url)  # noqa: S310 - an http:// address of the test
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with _opener.open(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def host_with_agent(region, name: str, agent_url: str) -> Host:
    return Host.objects.create(region=region, name=name, agent_url=agent_url)


@pytest.fixture
def polling(settings):
    settings.HOST_AGENT_TOKEN = TOKEN
    settings.HOST_AGENT_TIMEOUT = 3.0
    return settings


def test_poll_stores_the_agents_figures_and_round_trip(start_agent, polling):
    agent = start_agent()
    region = RegionFactory(hosts=0)
    host = host_with_agent(region, "cmp-1", agent.url)
    bystander = Host.objects.create(region=region, name="cmp-no-agent", response_ms=42.0)

    result = hosts_poll_agents()

    assert result["polled"] == 1 and result["ok"] == 1, result
    host.refresh_from_db()
    assert host.agent_error == ""
    assert host.agent_reported_at is not None
    assert host.memory_free_mb > 0
    assert host.disk_latency_ms > 0
    assert 0 < host.response_ms < 3000
    assert host.load_1m is not None and host.load_1m >= 0
    # A host without an agent is left alone.
    bystander.refresh_from_db()
    assert bystander.response_ms == 42.0 and bystander.agent_reported_at is None


def test_wrong_token_is_refused_and_the_last_figures_stay(start_agent, polling):
    agent = start_agent()
    host = host_with_agent(RegionFactory(hosts=0), "cmp-1", agent.url)
    hosts_poll_agents()
    host.refresh_from_db()
    figures = (host.memory_free_mb, host.response_ms, host.agent_reported_at)

    polling.HOST_AGENT_TOKEN = "not-the-token"
    result = hosts_poll_agents()

    host.refresh_from_db()
    assert result["failed"] == 1
    assert host.agent_error == "401 unauthorized"
    assert (host.memory_free_mb, host.response_ms, host.agent_reported_at) == figures

    polling.HOST_AGENT_TOKEN = TOKEN
    hosts_poll_agents()
    host.refresh_from_db()
    assert host.agent_error == ""  # a good poll clears it
    assert host.agent_reported_at > figures[2]


def test_a_stopped_agent_is_named_and_other_hosts_are_still_updated(start_agent, polling):
    region = RegionFactory(hosts=0)
    alive, doomed = start_agent(), start_agent()
    alive_host = host_with_agent(region, "cmp-alive", alive.url)
    doomed_host = host_with_agent(region, "cmp-doomed", doomed.url)
    hosts_poll_agents()
    doomed.stop()
    alive_host.refresh_from_db()
    reported_before = alive_host.agent_reported_at

    result = hosts_poll_agents()

    assert result == {
        "polled": 2,
        "ok": 1,
        "failed": 1,
        "errors": {"cmp-doomed": "connection refused"},
    }
    doomed_host.refresh_from_db()
    alive_host.refresh_from_db()
    assert doomed_host.agent_error == "connection refused"
    assert doomed_host.memory_free_mb > 0  # the last figures are kept
    assert alive_host.agent_error == ""
    assert alive_host.agent_reported_at > reported_before


def test_an_agent_that_does_not_answer_times_out(polling):
    polling.HOST_AGENT_TIMEOUT = 0.3
    # Accepts connections (the kernel's backlog) but never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        port = silent.getsockname()[1]
        host = host_with_agent(RegionFactory(hosts=0), "cmp-1", f"http://127.0.0.1:{port}")

        hosts_poll_agents()

    host.refresh_from_db()
    assert host.agent_error == "timeout"


@pytest.fixture
def odd_agent():
    """Something at an agent's address that answers, but not as an agent should:
    each path gives a status and a body."""
    answers = {
        "/nonsense/v1/health": (
            200,
            b'{"load_average": {"1m": Infinity}, "memory_mib": {"available": 1e99},'
            b' "disk": {"latency_ms": "fast"}}',
        ),
        "/html/v1/health": (200, b"<html>hello</html>"),
        "/broken/v1/health": (500, b"{}"),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers.get(self.path, (404, b"{}"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_odd_answers_are_named_and_nonsense_figures_dropped(odd_agent, polling):
    region = RegionFactory(hosts=0)
    nonsense = host_with_agent(region, "cmp-nonsense", f"{odd_agent}/nonsense/")
    html = host_with_agent(region, "cmp-html", f"{odd_agent}/html")
    broken = host_with_agent(region, "cmp-broken", f"{odd_agent}/broken/")

    result = hosts_poll_agents()

    assert result["ok"] == 1 and result["failed"] == 2
    for host in (nonsense, html, broken):
        host.refresh_from_db()
    assert nonsense.agent_error == "" and nonsense.response_ms > 0
    assert (nonsense.load_1m, nonsense.memory_free_mb, nonsense.disk_latency_ms) == (None,) * 3
    assert html.agent_error == "answer is not JSON"
    assert broken.agent_error == "500 internal server error"


def test_without_a_token_nothing_is_polled(start_agent, settings):
    settings.HOST_AGENT_TOKEN = ""
    host = host_with_agent(RegionFactory(hosts=0), "cmp-1", start_agent().url)

    assert hosts_poll_agents()["polled"] == 0
    host.refresh_from_db()
    assert host.agent_reported_at is None


def test_a_disk_the_agent_cannot_write_is_reported(start_agent, polling, tmp_path):
    disk = tmp_path / "images"
    agent = start_agent(disk_dir=disk)
    shutil.rmtree(disk)  # the probe's write now fails
    host = host_with_agent(RegionFactory(hosts=0), "cmp-1", agent.url)

    hosts_poll_agents()

    host.refresh_from_db()
    assert host.memory_free_mb > 0  # what could be measured is kept
    assert host.disk_latency_ms is None
    assert host.agent_error.startswith("disk: write in")


def test_the_cloud_sync_keeps_the_agents_response_time(polling, start_agent):
    region = RegionFactory(hosts=2)
    regions_sync_hosts()
    with_agent, without_agent = Host.objects.filter(region=region).order_by("name")
    with_agent.agent_url = start_agent().url
    with_agent.save()
    hosts_poll_agents()
    with_agent.refresh_from_db()
    measured = with_agent.response_ms

    regions_sync_hosts()

    with_agent.refresh_from_db()
    without_agent.refresh_from_db()
    assert with_agent.response_ms == measured
    # The simulated cloud's figure (20 ms) still reaches hosts without an agent.
    assert without_agent.response_ms == 20.0


def test_the_agent_answers_json_for_every_refusal(start_agent):
    agent = start_agent()
    health = f"{agent.url}v1/health"

    assert get(health) == (
        401,
        {"error": "unauthorized", "detail": "a valid bearer token is required"},
    )
    assert get(health, token="wrong")[0] == 401
    status, body = get(f"{agent.url}metrics", token=TOKEN)
    assert status == 404 and body["error"] == "not_found"
    status, body = get(health, token=TOKEN)
    assert status == 200
    assert body["agent_version"] and body["host"] == socket.gethostname()
    assert body["memory_mib"]["total"] >= body["memory_mib"]["available"] > 0
    assert set(body["load_average"]) == {"1m", "5m", "15m"}


@pytest.mark.parametrize(
    "garbage",
    [
        b"GARBAGE\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
        b"GET /v1/health HTTP/9.9\r\n\r\n",
        b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
        b"GET /v1/health HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\r\nConnection: close\r\n\r\n",
        b"BREW /v1/health HTTP/1.1\r\n\r\n",
        b"\r\n",
    ],
)
def test_the_agent_survives_garbage(start_agent, garbage):
    agent = start_agent()
    with socket.create_connection(("127.0.0.1", agent.port), timeout=5) as raw:
        raw.sendall(garbage)
        answer = b""
        try:
            while chunk := raw.recv(65536):
                answer += chunk
        except ConnectionResetError:  # closed with part of a huge request unread
            pass
    if answer:  # a bare newline is dropped without a word
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.")
        status = int(head.split()[1])
        assert 400 <= status < 600
        assert "error" in json.loads(body)

    assert get(f"{agent.url}v1/health", token=TOKEN)[0] == 200
    assert agent.process.poll() is None


def test_the_agent_refuses_to_start_without_a_token(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DESKOPS_AGENT_TOKEN"}
    finished = subprocess.run(
        [AGENT_PYTHON, str(AGENT), "--listen", "127.0.0.1:0", "--disk-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=15,
    )
    assert finished.returncode != 0
    assert "no token" in finished.stderr


def test_the_poll_runs_on_beat():
    from cloud.tasks import hosts_poll_agents as task

    entry = django_settings.CELERY_BEAT_SCHEDULE["cloud-poll-host-agents"]
    assert entry["task"] == task.name
    assert entry["schedule"].total_seconds() == django_settings.HOST_AGENT_INTERVAL
