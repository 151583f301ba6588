"""The application server of the login storm: gunicorn serving the WSGI app, as in
production, on a free loopback port, in an environment of the benchmark's own
(database, directory, Redis cache and broker)."""

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

from django.conf import settings

logger = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for child processes that reaches the database this process is
    connected to (in a test run, the test database, not the configured one)."""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"


class Gunicorn:
    """gunicorn over `portal.wsgi` with `workers` processes of `worker_class`
    (`threads` each for gthread), started by `start()` and ended by `stop()`."""

    def __init__(
        self,
        *,
        env: dict,
        workers: int,
        worker_class: str = "sync",
        threads: int = 1,
        log_path: Path | None = None,
    ) -> None:
        self.env, self.workers, self.worker_class, self.threads = (
            env,
            workers,
            worker_class,
            threads,
        )
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        # The server's own output (warnings of the warm-up's malformed requests,
        # any traceback) goes to a file, not between the benchmark's lines.
        self.log_path = log_path

    def start(self, *, timeout: float = 30.0) -> None:
        command = [
            sys.executable, "-m", "gunicorn", "portal.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", self.worker_class,
            "--threads", str(self.threads),
            # A login storm opens many connections at once; the default backlog
            # (2048) is kept explicit because it is part of what is measured.
            "--backlog", "2048",
            "--log-level", "warning",
            "--graceful-timeout", "5",
        ]  # fmt: skip
        log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        try:
            self.process = subprocess.Popen(  # noqa: S603 (our own interpreter and arguments)
                command, cwd=Path(settings.BASE_DIR), env=self.env, stdout=log, stderr=log
            )
        finally:
            if log is not None:
                log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"gunicorn exited with {self.process.returncode}: {self.log_tail()}"
                )
            try:
                if self._get("/healthz") == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def warm_up(self) -> None:
        """Send each worker a few malformed connects (400 each), so the first
        clients of the storm do not pay for imports a long-running server has
        long since done."""
        slots = self.workers * max(self.threads, 1)
        with ThreadPoolExecutor(max_workers=slots) as executor:
            list(executor.map(lambda _: self._post_empty(), range(4 * slots)))

    def _get(self, path: str) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        finally:
            connection.close()

    def _post_empty(self) -> int:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request(
                "POST",
                "/api/thin-client/v1/connect",
                body=json.dumps({}),
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            return response.status
        finally:
            connection.close()

    def cpu_seconds(self) -> float | None:
        """CPU seconds (user and system) spent so far by the running server: the
        master and its live workers, read from /proc. Sampled before and after the
        storm, it leaves out what starting the workers cost (importing Django and
        the apps takes each one a couple of seconds), which the server's total
        would spread over the connects. None where there is no /proc."""
        if self.process is None:
            return None
        try:
            return sum(_proc_cpu(pid) for pid in [self.process.pid, *_children(self.process.pid)])
        except OSError:
            return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            logger.warning("gunicorn did not stop in time; killing it")
            self.process.kill()
            self.process.wait()


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def _proc_cpu(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat are user and system time in clock ticks;
    # the command name (field 2) may hold spaces, so count from after it.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
