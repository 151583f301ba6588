"""Alerts: every rule opens an alert, clears it and fires it again; two evaluations
at once do not duplicate; operators are told by webhook and e-mail on open and
re-fire only; they acknowledge and close alerts on the page and through the API."""

import csv
import io
import json
import re
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from cloud.models import Host
from monitoring.alert_notifications import alert_notify
from monitoring.alerts import alert_close, alert_conditions, alerts_apply, alerts_evaluate
from monitoring.choices import AlertKind, AlertStatus, IncidentKind
from monitoring.models import Alert, Incident, ProbeResult
from pools.models import VM, VMPool
from portal.celery import app as celery_app
from portal.models import AuditEvent
from tests.factories import UserFactory, VMFactory, VMPoolFactory, fill_pool

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_grace_no_channels(settings):
    """Most tests want a short pool to count at once, and nothing sent anywhere."""
    settings.ALERT_POOL_GRACE_SECONDS = 0
    settings.ALERT_EMAIL_TO = []
    settings.ALERT_WEBHOOK_URL = ""


@pytest.fixture
def staff():
    return UserFactory(username="operator", role="operator")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


@pytest.fixture
def api(staff):
    client = APIClient()
    client.force_authenticate(staff)
    return client


def unclosed(key: str) -> Alert | None:
    return Alert.objects.exclude(status=AlertStatus.CLOSED).filter(key=key).first()


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def make_alert(key="probe_failing", **fields) -> Alert:
    values = {
        "kind": AlertKind.PROBE_FAILING,
        "severity": "critical",
        "message": f"Something about {key}",
        "last_seen_at": timezone.now(),
    }
    values.update(fields)
    return Alert.objects.create(key=key, **values)


# -- a small receiver of webhooks, on the loopback ------------------------------


class Receiver:
    """A real HTTP server in a thread that records every POST it is sent and
    answers with `status`."""

    def __init__(self):
        self.received: list[dict] = []
        self.status = 204
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.received.append(
                    {
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/deskops"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self) -> list[dict]:
        return [r["body"] for r in self.received]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    receiver = Receiver()
    settings.ALERT_WEBHOOK_URL = receiver.url
    yield receiver
    receiver.stop()


@pytest.fixture
def tasks_run_at_once():
    """Queued Celery tasks run in this process as they are queued."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def evaluate(django_capture_on_commit_callbacks):
    """Run the evaluator and what it queues on commit (the notifications)."""

    def run() -> dict:
        with django_capture_on_commit_callbacks(execute=True):
            return alerts_evaluate()

    return run


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


# -- every rule opens, clears and fires again -----------------------------------


def short_pool(pool):
    VMPool.objects.filter(pk=pool.pk).update(min_ready=2)
    VM.objects.filter(pool=pool, state="ready").update(state="in_use")


def refilled_pool(pool):
    VM.objects.filter(pool=pool).delete()
    fill_pool(pool, 2)


def paused_pool(pool):
    VMPool.objects.filter(pk=pool.pk).update(
        paused_at=timezone.now(), pause_reason="5 boots failed in the last 10 minutes"
    )


def resumed_pool(pool):
    VMPool.objects.filter(pk=pool.pk).update(paused_at=None, pause_reason="")


def failing_boots(pool):
    VM.objects.filter(pool=pool, state="error").delete()
    for _ in range(4):  # one more than ALERT_BOOT_FAILURES
        VMFactory(pool=pool, state="error", error="No valid host was found.")


def few_failing_boots(pool):
    keep = list(VM.objects.filter(pool=pool, state="error").values_list("pk", flat=True)[:3])
    VM.objects.filter(pool=pool, state="error").exclude(pk__in=keep).delete()


def host_down(pool):
    Host.objects.update_or_create(
        region=pool.region, name="cmp-7", defaults={"state": "down", "down_since": ago(90)}
    )


def host_up(pool):
    Host.objects.filter(name="cmp-7").update(state="up", down_since=None, failed_at=None)


def probe_failing(pool):
    ProbeResult.objects.create(ok=False, outcome="cloud_unavailable", status_code=503)
    ProbeResult.objects.create(ok=False, outcome="cloud_unavailable", status_code=503)


def probe_ok(pool):
    ProbeResult.objects.create(ok=True, outcome="ready", status_code=200, latency_ms=40)


def slow_boot(pool):
    VMPool.objects.filter(pk=pool.pk).update(target_ready=4)
    vm = VMFactory(pool=pool, state="building")
    VM.objects.filter(pk=vm.pk).update(requested_at=ago(600))  # VM_BOOT_TIMEOUT / 2 = 450


def boot_finished(pool):
    VM.objects.filter(pool=pool, state="building").update(state="ready")


def vm_without_ip(pool):
    VM.objects.filter(pool=pool, state="ready").update(ip_missing_since=ago(300))


def vm_got_ip(pool):
    VM.objects.filter(pool=pool).update(ip_missing_since=None)


RULES = {
    "pool below min": (short_pool, refilled_pool, "pool_below_min:{pool}", "critical"),
    "pool paused": (paused_pool, resumed_pool, "boot_failures:paused:{pool}", "critical"),
    "boots failing": (failing_boots, few_failing_boots, "boot_failures:errors:{pool}", "warning"),
    "host down": (host_down, host_up, "host_down:{region}/cmp-7", "critical"),
    "probe failing": (probe_failing, probe_ok, "probe_failing", "critical"),
    "refill behind": (slow_boot, boot_finished, "refill_behind:{pool}", "warning"),
}


@pytest.mark.parametrize("rule", RULES.values(), ids=RULES.keys())
def test_each_rule_opens_clears_and_fires_again(rule):
    break_it, fix_it, key, severity = rule
    pool = VMPoolFactory()
    fill_pool(pool, 2)
    key = key.format(pool=pool.name, region=pool.region.name)
    assert alerts_evaluate()["opened"] == 0

    break_it(pool)
    assert alerts_evaluate()["opened"] == 1
    alert = unclosed(key)
    assert alert is not None and alert.cleared_at is None, [a.key for a in Alert.objects.all()]
    assert alert.severity == severity and alert.status == AlertStatus.OPEN

    again = alerts_evaluate()
    assert again == {"opened": 0, "refired": 0, "cleared": 0, "transient": 0}
    assert Alert.objects.filter(key=key).count() == 1
    assert unclosed(key).last_seen_at > alert.last_seen_at

    fix_it(pool)
    assert alerts_evaluate()["cleared"] == 1
    assert unclosed(key).cleared_at is not None

    break_it(pool)
    assert alerts_evaluate()["refired"] == 1
    refired = unclosed(key)
    assert refired.pk == alert.pk and refired.cleared_at is None
    assert Alert.objects.filter(key=key).count() == 1


def test_a_vm_without_an_ip_address_gets_an_alert_of_its_own(settings):
    pool = VMPoolFactory()
    fill_pool(pool, 2)
    first, second = VM.objects.filter(pool=pool).order_by("pk")
    VM.objects.filter(pk=first.pk).update(ip_missing_since=ago(60))  # within the 120 s
    assert alerts_evaluate()["opened"] == 0

    vm_without_ip(pool)
    assert alerts_evaluate()["opened"] == 2
    assert {a.key for a in Alert.objects.all()} == {
        f"vm_no_ip:{first.name}",
        f"vm_no_ip:{second.name}",
    }
    assert "has had no IP address for 5 min" in unclosed(f"vm_no_ip:{first.name}").message

    VM.objects.filter(pk=first.pk).update(ip_missing_since=None)
    assert alerts_evaluate()["cleared"] == 1
    VM.objects.filter(pk=first.pk).update(ip_missing_since=ago(500), state="in_use")
    assert alerts_evaluate()["refired"] == 1
    assert unclosed(f"vm_no_ip:{first.name}").severity == "critical"  # a user has it
    vm_got_ip(pool)
    assert alerts_evaluate()["cleared"] == 2


def test_a_host_down_alert_links_the_hosts_open_incident():
    pool = VMPoolFactory()
    host = Host.objects.create(region=pool.region, name="cmp-9", state="up", failed_at=ago(30))
    incident = Incident.objects.create(
        kind=IncidentKind.HOST_FAILURE, title="cmp-9 failed", host=host, region=pool.region
    )
    Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="old", host=host, status="closed")
    alerts_evaluate()
    alert = unclosed(f"host_down:{pool.region.name}/cmp-9")
    assert alert.incident == incident
    assert "declared failed" in alert.message


def test_a_probe_needs_the_last_runs_all_failed():
    ProbeResult.objects.create(ok=False, outcome="cloud_unavailable")
    alerts_evaluate()
    assert not Alert.objects.exists()  # one failure: the probe may just have been unlucky
    ProbeResult.objects.create(ok=False, outcome="invalid_credentials", detail="wrong password")
    alerts_evaluate()
    assert "invalid_credentials: wrong password" in unclosed("probe_failing").message


def test_closing_an_alert_that_still_fires_opens_a_new_one(staff):
    probe_failing(None)
    alerts_evaluate()
    first = unclosed("probe_failing")
    alert_close(alert=first, actor=staff.username)
    assert alerts_evaluate()["opened"] == 1
    second = unclosed("probe_failing")
    assert second.pk != first.pk
    assert Alert.objects.get(pk=first.pk).status == AlertStatus.CLOSED


# -- the pool's grace -----------------------------------------------------------


def test_a_short_pool_is_notified_only_once_the_grace_is_over(
    settings, receiver, tasks_run_at_once, evaluate
):
    settings.ALERT_POOL_GRACE_SECONDS = 120
    pool = VMPoolFactory(min_ready=1)
    evaluate()
    alert = unclosed(f"pool_below_min:{pool.name}")
    assert alert is not None and alert.notified_at is None
    evaluate()
    assert receiver.received == []  # still within the grace

    Alert.objects.filter(pk=alert.pk).update(opened_at=ago(130), last_seen_at=ago(20))
    evaluate()
    evaluate()
    assert [b["key"] for b in receiver.bodies()] == [f"pool_below_min:{pool.name}"]
    assert Alert.objects.get(pk=alert.pk).notified_at is not None


def test_a_pool_short_for_a_moment_leaves_a_closed_alert_and_tells_nobody(
    settings, receiver, tasks_run_at_once, evaluate
):
    settings.ALERT_POOL_GRACE_SECONDS = 120
    pool = VMPoolFactory(min_ready=1)
    evaluate()
    fill_pool(pool, 1)
    counts = evaluate()

    assert counts["transient"] == 1
    alert = Alert.objects.get(key=f"pool_below_min:{pool.name}")
    assert (alert.status, alert.closed_by) == (AlertStatus.CLOSED, "system")
    assert receiver.received == []
    assert AuditEvent.objects.filter(action="alert.close", actor="system").exists()


# -- two evaluations at once ----------------------------------------------------


def test_an_evaluation_that_looked_earlier_does_not_duplicate_or_undo_a_later_one():
    probe_failing(None)
    earlier_now = timezone.now()
    earlier = alert_conditions(earlier_now)  # evaluation A has looked...

    assert alerts_evaluate()["opened"] == 1  # ...B looks later and opens the alert...
    assert alerts_apply(earlier, earlier_now)["opened"] == 0  # ...A then finds it
    assert Alert.objects.count() == 1

    # A looks while the probe fails, B after it recovered: A must not re-fire.
    stale_now = timezone.now()
    stale = alert_conditions(stale_now)
    probe_ok(None)
    assert alerts_evaluate()["cleared"] == 1
    assert alerts_apply(stale, stale_now) == {
        "opened": 0,
        "refired": 0,
        "cleared": 0,
        "transient": 0,
    }
    assert unclosed("probe_failing").cleared_at is not None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_evaluations_at_the_same_time_open_one_alert_per_condition():
    pool = VMPoolFactory(min_ready=3)
    probe_failing(pool)
    barrier = threading.Barrier(4)
    results, errors = [], []

    def run():
        from django.db import connection

        try:
            barrier.wait()
            results.append(alerts_evaluate())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(r["opened"] for r in results) == 2
    assert Alert.objects.filter(key=f"pool_below_min:{pool.name}").count() == 1
    assert Alert.objects.filter(key="probe_failing").count() == 1


# -- notifications --------------------------------------------------------------


def test_the_webhook_gets_the_alert_on_open_and_refire_only(
    settings, receiver, tasks_run_at_once, evaluate
):
    settings.PORTAL_BASE_URL = "https://deskops.example.com/"
    probe_failing(None)
    evaluate()
    evaluate()  # still failing: nobody is told twice
    alert = unclosed("probe_failing")

    assert len(receiver.received) == 1
    assert receiver.received[0]["content_type"] == "application/json"
    assert receiver.received[0]["body"] == {
        "kind": "probe_failing",
        "key": "probe_failing",
        "severity": "critical",
        "status": "open",
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "url": f"https://deskops.example.com/alerts/{alert.pk}/",
    }
    assert alert.notified_at is not None and alert.notify_error == ""

    probe_ok(None)
    evaluate()
    probe_failing(None)
    evaluate()
    assert len(receiver.received) == 2  # the re-fire


def test_an_acknowledged_alert_is_not_notified_again(staff, receiver, tasks_run_at_once, evaluate):
    from monitoring.alerts import alert_acknowledge

    probe_failing(None)
    evaluate()
    alert_acknowledge(alert=unclosed("probe_failing"), actor=staff.username)
    probe_ok(None)
    evaluate()
    probe_failing(None)
    counts = evaluate()
    assert counts["refired"] == 1
    assert len(receiver.received) == 1
    assert unclosed("probe_failing").status == AlertStatus.ACKNOWLEDGED


def test_a_webhook_that_is_down_is_recorded_and_retried(settings):
    settings.ALERT_WEBHOOK_URL = closed_port_url()
    alert = make_alert()

    result = alert_notify(alert_id=alert.pk)

    assert result.retry == ["webhook"] and result.delivered == []
    alert.refresh_from_db()
    assert alert.notified_at is None
    assert alert.notify_error.startswith("webhook: cannot reach the webhook")


def test_the_task_retries_only_what_failed_for_a_passing_reason(settings, receiver):
    from celery.exceptions import Retry

    from monitoring.tasks import alert_notify as alert_notify_task

    settings.ALERT_EMAIL_TO = ["ops@example.com"]
    receiver.status = 503
    alert = make_alert()
    with pytest.raises(Retry):
        alert_notify_task.run(alert.pk)
    alert.refresh_from_db()
    assert len(mail.outbox) == 1 and len(receiver.received) == 1
    assert alert.notified_at is not None  # the mail went out
    assert alert.notify_error == "webhook: HTTP 503 Service Unavailable"

    receiver.status = 200
    alert_notify_task.run(alert.pk, channels=["webhook"])  # the retry
    alert.refresh_from_db()
    assert len(mail.outbox) == 1 and len(receiver.received) == 2  # no second mail
    assert alert.notify_error == ""


def test_a_refused_webhook_is_not_retried(receiver):
    receiver.status = 400
    alert = make_alert()
    result = alert_notify(alert_id=alert.pk)
    assert result.retry == [] and result.errors == {"webhook": "HTTP 400 Bad Request"}


def test_alerts_are_mailed_to_every_address(settings, tasks_run_at_once, evaluate):
    settings.ALERT_EMAIL_TO = ["ops@example.com", "noc@example.com"]
    host_down(VMPoolFactory(min_ready=0))
    evaluate()
    alert = Alert.objects.get()

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["ops@example.com", "noc@example.com"]
    assert sent.subject == f"[DeskOps CRITICAL] {alert.message}"
    assert f"http://127.0.0.1:8000/alerts/{alert.pk}/" in sent.body
    assert Alert.objects.get().notified_at is not None


def test_without_a_channel_the_alert_says_it_was_not_sent():
    alert = make_alert()
    alert_notify(alert_id=alert.pk)
    alert.refresh_from_db()
    assert "neither ALERT_EMAIL_TO nor ALERT_WEBHOOK_URL" in alert.notify_error


def test_the_evaluation_runs_from_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["monitoring-evaluate-alerts"]
    assert entry["task"] == "monitoring.tasks.alerts_evaluate"
    assert entry["schedule"] == timedelta(seconds=settings.ALERT_EVALUATE_INTERVAL)


# -- the page ---------------------------------------------------------------------


def test_the_page_lists_unclosed_alerts_newest_first_with_filters(staff_client):
    old = make_alert("host_down:east/cmp-1", kind=AlertKind.HOST_DOWN, message="Host cmp-1 down")
    Alert.objects.filter(pk=old.pk).update(opened_at=ago(600))
    make_alert("probe_failing", message="Probe failing")
    make_alert("vm_no_ip:a", kind=AlertKind.VM_NO_IP, severity="warning", message="VM a no IP",
               status=AlertStatus.CLOSED)  # fmt: skip

    page = staff_client.get("/alerts/").content.decode()
    assert page.index("Probe failing") < page.index("Host cmp-1 down")
    assert "VM a no IP" not in page
    assert "a new alert opens for it" in page

    page = staff_client.get("/alerts/?status=closed").content.decode()
    assert "VM a no IP" in page and "Probe failing" not in page
    page = staff_client.get("/alerts/?kind=host_down").content.decode()
    assert "Host cmp-1 down" in page and "Probe failing" not in page
    page = staff_client.get("/alerts/?severity=warning&status=any").content.decode()
    assert "VM a no IP" in page and "Host cmp-1 down" not in page

    bad = staff_client.get("/alerts/?status=burning&page=abc")
    assert bad.status_code == 200
    assert "Select a valid choice" in bad.content.decode()


def test_the_page_comes_in_pages(staff_client):
    for index in range(55):
        make_alert(f"vm_no_ip:vm-{index}", kind=AlertKind.VM_NO_IP, message=f"alert number {index}")
    first = staff_client.get("/alerts/?kind=vm_no_ip").content.decode()
    assert "55 alerts · page 1 of 2" in first
    assert "alert number 54<" in first and "alert number 0<" not in first
    second = staff_client.get("/alerts/?kind=vm_no_ip&page=2").content.decode()
    assert "alert number 0<" in second and "alert number 54<" not in second


def page_csrf(client, url) -> str:
    html = client.get(url).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_acknowledge_and_close_on_the_page_need_the_csrf_token(staff):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    alert = make_alert()

    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN

    token = page_csrf(client, "/alerts/")
    response = client.post(
        f"/alerts/{alert.pk}/acknowledge/",
        {"csrfmiddlewaretoken": token, "next": "/alerts/?kind=probe_failing"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/alerts/?kind=probe_failing"
    assert f"Acknowledged: {alert.message}" in response.content.decode()
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == (AlertStatus.ACKNOWLEDGED, "operator")

    response = client.post(
        f"/alerts/{alert.pk}/close/", {"csrfmiddlewaretoken": token}, follow=True
    )
    assert f"Closed: {alert.message}" in response.content.decode()
    assert Alert.objects.get(pk=alert.pk).closed_by == "operator"
    event = AuditEvent.objects.get(action="alert.close")
    assert (event.actor, event.before, event.after["status"]) == (
        "operator", {"status": "acknowledged"}, "closed",
    )  # fmt: skip


def test_page_actions_refuse_what_cannot_be_done(staff_client):
    alert = make_alert(status=AlertStatus.CLOSED)
    response = staff_client.post(f"/alerts/{alert.pk}/close/", follow=True)
    assert response.status_code == 200
    assert "This alert is already closed." in response.content.decode()
    response = staff_client.post(f"/alerts/{alert.pk}/acknowledge/", follow=True)
    assert "This alert is already closed." in response.content.decode()
    assert staff_client.post("/alerts/999999/close/").status_code == 404
    assert staff_client.get("/alerts/999999/").status_code == 404
    assert staff_client.get(f"/alerts/{alert.pk}/close/").status_code == 405
    # A "next" pointing elsewhere is not followed.
    open_alert = make_alert("other")
    response = staff_client.post(
        f"/alerts/{open_alert.pk}/close/", {"next": "https://evil.example.com/"}
    )
    assert response["Location"] == "/alerts/"


def test_the_pages_are_for_staff_only(client):
    alert = make_alert()
    assert client.get("/alerts/").status_code == 302
    client.force_login(UserFactory())  # a thin-client user
    for url in ["/alerts/", f"/alerts/{alert.pk}/"]:
        assert client.get(url).status_code == 403, url
    assert client.post(f"/alerts/{alert.pk}/close/").status_code == 403
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


def test_the_alerts_page_shows_its_history(staff_client, staff):
    alert = make_alert(notify_error="webhook: HTTP 500 Internal Server Error")
    alert_close(alert=alert, actor=staff.username)
    page = staff_client.get(f"/alerts/{alert.pk}/").content.decode()
    assert alert.message in page and "webhook: HTTP 500" in page
    assert "alert.close" in page and "operator" in page


def alert_messages(response) -> list[str]:
    assert response.status_code == 200
    return [row.obj.message for row in response.context["rows"]]


def test_the_page_searches_sorts_and_filters_on_firing(staff_client):
    make_alert("probe_failing", message="Probe failing", cleared_at=timezone.now())
    make_alert(
        "host_down:east/cmp-1",
        kind=AlertKind.HOST_DOWN,
        message="Host cmp-1 down",
        severity="warning",
    )
    make_alert("pool_below_min:agents", kind=AlertKind.POOL_BELOW_MIN, message="Pool agents short")

    assert alert_messages(staff_client.get("/alerts/?q=CMP-1")) == ["Host cmp-1 down"]
    assert alert_messages(staff_client.get("/alerts/?q=pool_below_min")) == ["Pool agents short"]
    assert set(alert_messages(staff_client.get("/alerts/?firing=yes"))) == {
        "Host cmp-1 down",
        "Pool agents short",
    }
    assert alert_messages(staff_client.get("/alerts/?firing=no")) == ["Probe failing"]
    oldest_first = alert_messages(staff_client.get("/alerts/?sort=opened_at"))
    assert oldest_first == ["Probe failing", "Host cmp-1 down", "Pool agents short"]
    by_severity = alert_messages(staff_client.get("/alerts/?sort=severity"))
    assert by_severity[-1] == "Host cmp-1 down"  # "warning" after "critical"
    bad = staff_client.get("/alerts/?firing=maybe&kind=fire&sort=-danger&per_page=9999")
    assert bad.status_code == 200 and len(bad.context["rows"]) == 3


def test_the_page_exports_every_matching_alert_as_csv(staff_client):
    incident = Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="cmp-1 failed")
    make_alert(
        "host_down:east/cmp-1",
        kind=AlertKind.HOST_DOWN,
        message="Host cmp-1 down",
        incident=incident,
        acknowledged_by="olga",
        status=AlertStatus.ACKNOWLEDGED,
    )
    for index in range(60):
        make_alert(f"vm_no_ip:vm-{index}", kind=AlertKind.VM_NO_IP, message=f"=vm {index}")
    make_alert("vm_no_ip:gone", kind=AlertKind.VM_NO_IP, status=AlertStatus.CLOSED)

    response = staff_client.get("/alerts/?format=csv&kind=vm_no_ip")
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 60  # every page, and still not the closed one
    assert rows[0]["Alert"] == "'=vm 59"  # a formula is defused
    assert rows[0]["Kind"] == "VM without an IP address" and rows[0]["Condition"] == "firing"

    response = staff_client.get("/alerts/?format=csv&kind=host_down")
    (row,) = csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))
    assert (row["Status"], row["By"], row["Incident"]) == ("Acknowledged", "olga", "cmp-1 failed")


def test_the_page_costs_the_same_queries_for_25_or_200_alerts(staff_client):
    incident = Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="cmp-1 failed")
    now = timezone.now()
    Alert.objects.bulk_create(
        Alert(
            kind=AlertKind.VM_NO_IP,
            key=f"vm_no_ip:vm-{index}",
            message=f"vm {index}",
            last_seen_at=now,
            incident=incident if index % 2 else None,
        )
        for index in range(210)
    )
    counts = []
    for size in (25, 200):
        with CaptureQueriesContext(connection) as captured:
            response = staff_client.get(f"/alerts/?per_page={size}")
        assert len(response.context["rows"]) == size
        counts.append(len(captured))
    assert counts[0] == counts[1]


@pytest.mark.parametrize("role", ["viewer", "helpdesk"])
def test_below_operator_the_buttons_are_hidden_and_refused(client, role):
    alert = make_alert()
    client.force_login(UserFactory(username=f"as-{role}", role=role))
    for url in ("/alerts/", f"/alerts/{alert.pk}/"):
        page = client.get(url).content.decode()
        assert alert.message in page
        assert "/acknowledge/" not in page and "/close/" not in page
    assert client.post(f"/alerts/{alert.pk}/acknowledge/").status_code == 403
    assert client.post(f"/alerts/{alert.pk}/close/").status_code == 403
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN


def test_the_alert_page_links_its_incident(staff_client):
    incident = Incident.objects.create(kind=IncidentKind.HOST_FAILURE, title="cmp-1 failed")
    alert = make_alert("host_down:east/cmp-1", kind=AlertKind.HOST_DOWN, incident=incident)
    page = staff_client.get(f"/alerts/{alert.pk}/").content.decode()
    assert f'href="/incidents/{incident.pk}/">cmp-1 failed</a>' in page
    assert "Recent events" in page


# -- the API ----------------------------------------------------------------------


def test_the_api_lists_and_filters_alerts(api):
    make_alert("probe_failing")
    make_alert("host_down:east/cmp-1", kind=AlertKind.HOST_DOWN, status=AlertStatus.ACKNOWLEDGED)
    make_alert("vm_no_ip:x", kind=AlertKind.VM_NO_IP, severity="warning", status="closed")

    body = api.get("/api/v1/alerts/").json()
    assert body["count"] == 3
    assert [a["key"] for a in body["results"]] == ["vm_no_ip:x", "host_down:east/cmp-1",
                                                   "probe_failing"]  # fmt: skip
    keys = [a["key"] for a in api.get("/api/v1/alerts/?status=open,acknowledged").json()["results"]]
    assert keys == ["host_down:east/cmp-1", "probe_failing"]
    keys = [a["key"] for a in api.get("/api/v1/alerts/?severity=warning").json()["results"]]
    assert keys == ["vm_no_ip:x"]
    response = api.get("/api/v1/alerts/?kind=host_down&kind=vm_no_ip")
    keys = [a["key"] for a in response.json()["results"]]
    assert keys == ["vm_no_ip:x", "host_down:east/cmp-1"]

    bad = api.get("/api/v1/alerts/?status=burning")
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request" and "status" in bad.json()["fields"]


def test_acknowledge_and_close_through_the_api(api):
    alert = make_alert()
    one = api.get(f"/api/v1/alerts/{alert.pk}/").json()
    assert (one["status"], one["firing"]) == ("open", True)
    assert one["url"].endswith(f"/alerts/{alert.pk}/")

    response = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["acknowledged_by"]) == (
        "acknowledged", "operator",
    )  # fmt: skip
    again = api.post(f"/api/v1/alerts/{alert.pk}/acknowledge/")
    assert again.status_code == 409 and again.json()["error"] == "alert_conflict"

    assert api.post(f"/api/v1/alerts/{alert.pk}/close/").json()["status"] == "closed"
    twice = api.post(f"/api/v1/alerts/{alert.pk}/close/")
    assert twice.status_code == 409
    assert twice.json() == {"error": "alert_conflict", "detail": "This alert is already closed."}
    assert AuditEvent.objects.filter(action="alert.acknowledge", actor="operator").count() == 1

    missing = api.post("/api/v1/alerts/999999/close/")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_the_api_is_for_staff_only():
    alert = make_alert()
    assert APIClient().get("/api/v1/alerts/").status_code == 401
    agent = APIClient()
    agent.force_authenticate(UserFactory())
    response = agent.post(f"/api/v1/alerts/{alert.pk}/close/")
    assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.OPEN
