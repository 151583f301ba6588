"""LOG_FORMAT=json: every log line is one JSON object a log shipper can read, with
the request's id while a request is served."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.test import RequestFactory

from portal.logging import JsonFormatter, RequestIdFilter, current_request_id
from portal.middleware import RequestIdMiddleware

ROOT = Path(__file__).resolve().parents[2]


class Lines(logging.Handler):
    """Keeps the formatted lines, as the console handler would write them."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter())
        self.addFilter(RequestIdFilter())

    def emit(self, record):
        self.lines.append(self.format(record))

    def objects(self) -> list[dict]:
        return [json.loads(line) for line in self.lines]


@pytest.fixture
def lines():
    handler = Lines()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_a_line_is_one_json_object_with_the_traceback_as_text(lines):
    logger = logging.getLogger("pools.services.refill")
    try:
        raise ValueError("flavor desk.huge\nnot found")
    except ValueError:
        logger.exception("refill of pool %s failed", "agents-east")

    [line] = lines.lines
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "pools.services.refill"
    assert entry["message"] == "refill of pool agents-east failed"
    assert entry["time"].endswith("Z") and entry["time"][:4].isdigit()
    assert "Traceback" in entry["exc_info"] and "ValueError: flavor desk.huge" in entry["exc_info"]
    assert "request_id" not in entry  # no request: no id


def test_lines_written_while_a_request_is_served_carry_its_id(lines):
    logger = logging.getLogger("allocation.services.connect")

    def view(request):
        logger.warning("console of %s unavailable", "vm-1")
        return HttpResponse("ok")

    response = RequestIdMiddleware(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID="req-42"))

    assert response["X-Request-ID"] == "req-42"
    [entry] = lines.objects()
    assert entry["request_id"] == "req-42"
    assert entry["message"] == "console of vm-1 unavailable"
    # The id does not outlive the request.
    assert current_request_id() == ""
    logger.warning("after the request")
    assert "request_id" not in lines.objects()[-1]


def test_djangos_own_request_lines_carry_the_id(client, lines):
    response = client.get("/no-such-page/", headers={"X-Request-ID": "lb-7f00"})

    assert response.status_code == 404
    [entry] = [e for e in lines.objects() if e["logger"] == "django.request"]
    assert entry["level"] == "WARNING" and "/no-such-page/" in entry["message"]
    assert entry["request_id"] == "lb-7f00"


def test_the_id_reaches_the_lines_under_asgi_too(async_client, lines):
    response = async_to_sync(async_client.get)("/no-such-page/", headers={"X-Request-ID": "asgi-1"})

    assert response.status_code == 404
    assert "asgi-1" in [e.get("request_id") for e in lines.objects()]


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
    )


def test_log_format_json_makes_the_console_write_json():
    code = (
        "import django, logging; django.setup(); "
        "logging.getLogger('cloud.services').warning('host sync of %s failed', 'east')"
    )

    finished = run_python(code, LOG_FORMAT="json")

    assert finished.returncode == 0, finished.stderr
    [line] = finished.stderr.strip().splitlines()
    entry = json.loads(line)
    assert entry["logger"] == "cloud.services"
    assert entry["message"] == "host sync of east failed"

    text = run_python(code, LOG_FORMAT="text")
    assert text.stderr.strip().endswith("WARNING cloud.services host sync of east failed")


def test_an_unknown_log_format_refuses_to_start():
    finished = run_python("import django; django.setup()", LOG_FORMAT="xml")

    assert finished.returncode != 0
    assert "LOG_FORMAT must be 'text' or 'json'" in finished.stderr


def test_celery_processes_write_json_too():
    # What `celery worker` and `celery beat` do at start: set up their logging.
    code = (
        "import django, logging; django.setup(); "
        "from portal.celery import app; "
        "app.log.setup_logging_subsystem(loglevel='INFO'); "
        "logging.getLogger('pools.tasks').warning('refill tick late by %d s', 12)"
    )

    finished = run_python(code, LOG_FORMAT="json")

    assert finished.returncode == 0, finished.stderr
    entry = json.loads(finished.stderr.strip().splitlines()[-1])
    assert entry["message"] == "refill tick late by 12 s" and entry["level"] == "WARNING"
