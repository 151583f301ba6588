"""The README's first command, for real: `scripts/demo.sh` starts the web server,
a Celery worker and Celery beat on the embedded defaults (SQLite, file-backed
broker); a thin client connects over HTTP; the worker refills the pool behind it;
Ctrl-C stops everything."""

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.stack


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_for_none(session_id: int, timeout: float = 15) -> str:
    """Wait until no process of the session is left; return what still runs."""
    deadline = time.monotonic() + timeout
    while True:
        found = subprocess.run(
            ["ps", "-o", "pid=,args=", "--sid", str(session_id)], capture_output=True, text=True
        ).stdout.strip()
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def ready_count(database: Path, pool: str) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM pools_vm JOIN pools_vmpool ON pools_vmpool.id = pools_vm.pool_id"
            " WHERE pools_vmpool.name = ? AND pools_vm.state = 'ready'",
            (pool,),
        ).fetchone()
    return count


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DESKOPS_", "DATABASE_", "CELERY_", "CHANNELS_"))
    }
    env.update(
        DESKOPS_VAR_DIR=str(tmp_path),
        DESKOPS_PORT=str(port),
        SIM_BOOT_SECONDS_MIN="1",
        SIM_BOOT_SECONDS_MAX="2",
        POOL_REFILL_INTERVAL="1",
    )
    log = (tmp_path / "demo.log").open("w")
    process = subprocess.Popen(
        ["scripts/demo.sh"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}", tmp_path / "deskops.sqlite3"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_demo_serves_a_thin_client_and_refills_and_stops_on_ctrl_c(demo):
    process, url, database = demo

    def web_up():
        try:
            return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            assert process.poll() is None, "the demo exited early"
            return False

    wait_for(web_up, timeout=180, what="the web server")
    body = {"username": "alice", "password": "deskops-demo", "terminal": "TC-SH-001"}
    response = httpx.post(f"{url}/api/thin-client/v1/connect", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["desktop"]["pool"] == "agents-east"
    assert ready_count(database, "agents-east") == 7

    # The beat schedules a refill, the worker boots a VM and sees it ready.
    wait_for(lambda: ready_count(database, "agents-east") == 8, timeout=60, what="the pool refill")

    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)
    # Nothing the demo started is left running (it runs in its own session).
    leftovers = wait_for_none(process.pid)
    assert leftovers == "", f"still running after Ctrl-C:\n{leftovers}"
