"""The synthetic login probe: a real login through the thin-client API served over
HTTP, what it records for each way the login path can break, and its page."""

import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.models import Binding, DesktopSession
from monitoring.models import ProbeResult
from monitoring.probe import probe_login, probe_results_prune
from monitoring.probe_selectors import probe_points, probe_summary
from monitoring.views.probe import latency_chart
from pools.choices import VMState
from pools.models import VM
from tests.factories import PASSWORD, Desk, UserFactory


@pytest.fixture
def probe_settings(settings):
    """Point the probe at `url` as `desk`'s user at `desk`'s terminal."""

    def configure(url: str, desk: Desk | None = None, password: str = PASSWORD):
        settings.PROBE_URL = url
        settings.PROBE_USERNAME = desk.user.username if desk else "probe"
        settings.PROBE_PASSWORD = password
        settings.PROBE_TERMINAL = desk.terminal.serial if desk else "TC-PROBE-01"
        settings.PROBE_TIMEOUT = 5

    return configure


class _CannedHandler(BaseHTTPRequestHandler):
    """Answers every POST from the server's `answers` table: path -> (status,
    content type, body)."""

    def do_POST(self):  # noqa: N802 - the name http.server calls
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, content_type, body = self.server.answers[self.path]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def canned_server():
    """A tiny local HTTP server that is not DeskOps: it answers what it is told."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CannedHandler)
    server.answers = {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- against the real application over HTTP ---------------------------------


def test_a_login_succeeds_and_the_session_is_handed_back(storm_server, probe_settings):
    desk = Desk.build(ready=3)
    probe_settings(storm_server, desk)

    first = probe_login()
    second = probe_login()

    assert first.ok and first.outcome == "ready" and first.status_code == 200
    assert first.latency_ms > 0
    vm = VM.objects.get(name=first.vm_name)
    assert vm.pool == desk.pool
    # Every session the probe opened is closed again.
    sessions = DesktopSession.objects.filter(user=desk.user)
    assert sessions.count() == 2
    assert not sessions.filter(ended_at__isnull=True).exists()
    assert set(sessions.values_list("ended_reason", flat=True)) == {"disconnect"}
    # A user-bound probe account keeps one desktop: the next run gets it back
    # instead of taking another ready VM from the pool every minute.
    assert second.ok and second.vm_name == first.vm_name
    assert Binding.objects.filter(user=desk.user, released_at__isnull=True).count() == 1
    assert VM.objects.filter(pool=desk.pool, state=VMState.READY).count() >= 2
    assert ProbeResult.objects.count() == 2


def test_a_floating_probe_desktop_goes_back_to_be_recycled(storm_server, probe_settings):
    desk = Desk.build(ready=2, policy=BindingPolicy.FLOATING)
    probe_settings(storm_server, desk)

    result = probe_login()

    assert result.ok, result.detail
    vm = VM.objects.get(name=result.vm_name)
    assert vm.state != VMState.IN_USE
    assert not Binding.objects.filter(vm=vm, released_at__isnull=True).exists()
    assert "disconnect failed" not in result.detail


def test_a_wrong_password_is_a_failed_login(storm_server, probe_settings):
    desk = Desk.build(ready=1)
    probe_settings(storm_server, desk, password="not the password")

    result = probe_login()

    assert not result.ok
    assert (result.outcome, result.status_code) == ("invalid_credentials", 401)
    assert result.latency_ms > 0
    assert not DesktopSession.objects.exists()


def test_an_empty_pool_answers_preparing_which_is_not_a_success(storm_server, probe_settings):
    desk = Desk.build(ready=0)
    probe_settings(storm_server, desk)

    result = probe_login()

    assert not result.ok
    assert (result.outcome, result.status_code) == ("preparing", 202)
    assert "retry after" in result.detail


def test_an_unknown_probe_terminal_is_reported_with_the_api_error(storm_server, probe_settings):
    desk = Desk.build(ready=1)
    desk.terminal.serial = "TC-NOT-ENROLLED"
    probe_settings(storm_server, desk)

    result = probe_login()

    assert not result.ok and result.outcome == "terminal_not_enrolled"
    assert result.status_code == 403


def test_the_demo_probe_account_logs_in_and_keeps_one_desktop(storm_server, settings):
    call_command("seed_demo", "--prewarm")
    settings.PROBE_URL = storm_server
    settings.PROBE_USERNAME, settings.PROBE_PASSWORD = "probe", "deskops-probe"
    settings.PROBE_TERMINAL = "TC-PROBE-01"

    first, second = probe_login(), probe_login()

    assert first.ok and second.ok, (first.detail, second.detail)
    assert first.vm_name == second.vm_name
    vm = VM.objects.get(name=first.vm_name)
    assert vm.pool.name == "agents-west"
    binding = Binding.objects.get(vm=vm, released_at__isnull=True)
    assert binding.user.username == "probe" and binding.kind == BindingPolicy.USER
    # The README's example login still lands where it did.
    assert VM.objects.filter(pool__name="agents-east", state=VMState.IN_USE).count() == 0


# --- when no DeskOps answers ---------------------------------------------------


@pytest.mark.django_db
def test_a_server_that_is_down_is_unreachable_without_an_exception(probe_settings):
    probe_settings(f"http://127.0.0.1:{_closed_port()}")

    result = probe_login()

    assert not result.ok
    assert result.outcome == "unreachable" and result.status_code is None
    assert result.detail
    assert ProbeResult.objects.get() == result


@pytest.mark.django_db
def test_a_probe_url_that_is_not_http_is_reported_not_raised(probe_settings):
    probe_settings("file:///etc/passwd")

    result = probe_login()

    assert (result.ok, result.outcome) == (False, "unreachable")
    assert "not an HTTP URL" in result.detail


@pytest.mark.django_db
def test_a_server_that_does_not_speak_http_is_a_bad_answer(probe_settings):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def greet():
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        probe_settings(f"http://127.0.0.1:{listener.getsockname()[1]}")

        result = probe_login()
        thread.join(timeout=5)

    assert (result.ok, result.outcome, result.status_code) == (False, "bad_answer", None)


@pytest.mark.django_db
def test_a_server_that_never_answers_is_a_timeout(probe_settings, settings):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        probe_settings(f"http://127.0.0.1:{silent.getsockname()[1]}")
        settings.PROBE_TIMEOUT = 0.3

        result = probe_login()

    assert not result.ok and result.outcome == "timeout"
    assert result.latency_ms >= 300


@pytest.mark.django_db
def test_an_html_page_is_a_bad_answer(canned_server, probe_settings):
    page = b"<html><body>Welcome to nginx!</body></html>"
    canned_server.answers["/api/thin-client/v1/connect"] = (200, "text/html", page)
    probe_settings(f"http://127.0.0.1:{canned_server.server_port}")

    result = probe_login()

    assert not result.ok
    assert (result.outcome, result.status_code) == ("bad_answer", 200)
    assert "nginx" in result.detail


@pytest.mark.django_db
def test_an_html_error_page_is_a_bad_answer_with_its_status(canned_server, probe_settings):
    page = b"<html><body>502 Bad Gateway</body></html>"
    canned_server.answers["/api/thin-client/v1/connect"] = (502, "text/html", page)
    probe_settings(f"http://127.0.0.1:{canned_server.server_port}")

    result = probe_login()

    assert (result.ok, result.outcome, result.status_code) == (False, "bad_answer", 502)


@pytest.mark.django_db
def test_a_failed_disconnect_is_noted_but_the_login_counts(canned_server, probe_settings):
    ready = (
        b'{"status": "ready", "session": "6f1c1d56-8a53-4a8e-9d0e-4f4b6d1a2b3c", "desktop": '
        b'{"id": 1, "name": "agents-east-1", "pool": "agents-east", "protocol": "spice", '
        b'"host": "192.0.2.11", "port": 5900, "tls_port": 5901, "password": "s3cret-s3cret", '
        b'"expires_at": "2026-01-01T00:00:00Z"}}'
    )
    canned_server.answers["/api/thin-client/v1/connect"] = (200, "application/json", ready)
    canned_server.answers["/api/thin-client/v1/disconnect"] = (500, "text/html", b"<h1>oops</h1>")
    probe_settings(f"http://127.0.0.1:{canned_server.server_port}")

    result = probe_login()

    assert result.ok and result.vm_name == "agents-east-1"
    assert "disconnect failed: HTTP 500" in result.detail


@pytest.mark.django_db
def test_a_200_without_spice_info_is_not_a_success(canned_server, probe_settings):
    canned_server.answers["/api/thin-client/v1/connect"] = (
        200,
        "application/json",
        b'{"status": "ready"}',
    )
    probe_settings(f"http://127.0.0.1:{canned_server.server_port}")

    result = probe_login()

    assert (result.ok, result.outcome) == (False, "bad_answer")


@pytest.mark.django_db
def test_an_unconfigured_probe_does_nothing(settings):
    settings.PROBE_USERNAME = "probe"
    settings.PROBE_PASSWORD = ""
    settings.PROBE_TERMINAL = "TC-PROBE-01"

    assert probe_login() is None
    assert not ProbeResult.objects.exists()


# --- keeping and reading results ------------------------------------------------


def _result(*, ok: bool, latency_ms: float | None, age: timedelta, outcome: str = "") -> None:
    result = ProbeResult.objects.create(
        ok=ok, outcome=outcome or ("ready" if ok else "preparing"), latency_ms=latency_ms
    )
    ProbeResult.objects.filter(pk=result.pk).update(at=timezone.now() - age)


@pytest.mark.django_db
def test_old_results_are_pruned(settings):
    settings.PROBE_RETENTION_DAYS = 30
    _result(ok=True, latency_ms=50, age=timedelta(days=31))
    _result(ok=True, latency_ms=50, age=timedelta(days=29))

    assert probe_results_prune() == 1
    assert ProbeResult.objects.count() == 1


@pytest.mark.django_db
def test_the_summary_counts_the_window_only(settings):
    settings.PROBE_USERNAME, settings.PROBE_PASSWORD, settings.PROBE_TERMINAL = "p", "p", "T"
    for minutes, latency in enumerate([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], start=1):
        _result(ok=True, latency_ms=latency, age=timedelta(minutes=minutes))
    _result(ok=False, latency_ms=None, age=timedelta(minutes=90), outcome="unreachable")
    _result(ok=False, latency_ms=5, age=timedelta(hours=30), outcome="timeout")  # outside

    summary = probe_summary(hours=24)

    assert (summary["total"], summary["ok"], summary["failed"]) == (11, 10, 1)
    assert summary["success_rate"] == 90.9
    assert (summary["p50_ms"], summary["p95_ms"]) == (50, 100)
    assert summary["last"]["latency_ms"] == 10
    assert summary["last_failure"]["outcome"] == "unreachable"
    assert sum(hour["total"] for hour in summary["per_hour"]) == 11
    assert sum(hour["failed"] for hour in summary["per_hour"]) == 1
    assert len(summary["per_hour"]) == 25
    assert not summary["stale"]


@pytest.mark.django_db
def test_the_chart_breaks_its_line_over_a_pause_and_marks_failures(settings):
    settings.PROBE_INTERVAL = 60
    for minutes in (300, 299, 298, 10, 9):  # a pause of almost five hours between
        _result(ok=True, latency_ms=100 + minutes, age=timedelta(minutes=minutes))
    _result(ok=False, latency_ms=3, age=timedelta(minutes=5), outcome="unreachable")
    failed = ProbeResult.objects.create(ok=False, status_code=401, outcome="x", latency_ms=200)

    chart = latency_chart(probe_points(24), hours=24)

    assert [len(line.split()) for line in chart["lines"]] == [3, 2]
    unanswered, answered = chart["failures"]
    assert unanswered["y"] == chart["top"]  # no HTTP answer: on the top edge
    assert chart["top"] < answered["y"] < chart["bottom"]
    assert answered["outcome"] == failed.outcome


# --- the page --------------------------------------------------------------------


@pytest.fixture
def staff(db):
    return UserFactory(role="operator")


def test_the_page_shows_the_summary_chart_and_results(storm_server, probe_settings, client, staff):
    desk = Desk.build(ready=2)
    probe_settings(storm_server, desk)
    probe_login()
    probe_settings(f"http://127.0.0.1:{_closed_port()}", desk)
    probe_login()
    client.force_login(staff)

    page = client.get("/probe/").content.decode()

    assert "50.0 %" in page  # one of two logins succeeded
    assert 'id="probe-chart"' in page
    assert page.count('class="failure"') == 1  # the red mark of the failed run
    assert "<polyline" in page
    assert "unreachable" in page
    assert VM.objects.get(state=VMState.IN_USE).name in page  # the desktop the probe got


def test_run_now_logs_in_and_says_how_it_went(storm_server, probe_settings, client, staff):
    desk = Desk.build(ready=1)
    probe_settings(storm_server, desk)
    client.force_login(staff)

    response = client.post("/probe/run")

    assert response.status_code == 302 and response["Location"] == "/probe/"
    result = ProbeResult.objects.get()
    assert result.ok
    shown = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("succeeded" in m and result.vm_name in m for m in shown), shown


@pytest.mark.django_db
def test_run_now_explains_an_unconfigured_probe(client, staff, settings):
    settings.PROBE_USERNAME = ""
    client.force_login(staff)

    response = client.post("/probe/run", follow=True)

    assert "not configured" in response.content.decode()
    assert not ProbeResult.objects.exists()
    page = client.get("/probe/").content.decode()
    assert "The probe is not configured" in page and "has not run yet" in page


@pytest.mark.django_db
def test_run_now_needs_a_post(client, staff):
    client.force_login(staff)
    assert client.get("/probe/run").status_code == 405


@pytest.mark.django_db
def test_the_page_and_run_now_are_for_staff_only(client, probe_settings):
    probe_settings(f"http://127.0.0.1:{_closed_port()}")
    assert client.get("/probe/")["Location"].startswith("/login/")
    client.force_login(UserFactory())  # a thin-client user, not staff

    assert client.get("/probe/").status_code == 403
    assert client.post("/probe/run").status_code == 403
    assert not ProbeResult.objects.exists()


def test_a_lone_success_is_drawn_as_a_dot():
    now = timezone.now()
    point = {"at": now, "ok": True, "latency_ms": 120.0, "status_code": 200}
    chart = latency_chart([{**point, "outcome": "ready", "detail": ""}], hours=24, now=now)
    assert len(chart["dots"]) == 1 and chart["lines"] == [" ".join([",".join(chart["dots"][0])])]
