#!/usr/bin/env python3
"""DeskOps host agent: a compute node's own health, over HTTP, for the portal.

The portal polls `GET /v1/health` on every host that has an agent address and
keeps the figures with the host: load average, memory available, the latency of a
small synced write on the disk that holds the VMs' images, and the round-trip
time of the request itself (the response time that placement weighs).

One file, Python's standard library only, Python 3.9 or later: copy it to a
compute node and run it. See README.md next to it for installing it under systemd.

    DESKOPS_AGENT_TOKEN=secret python3 deskops_host_agent.py --listen 0.0.0.0:9180
    curl -H 'Authorization: Bearer secret' http://127.0.0.1:9180/v1/health

Every answer is JSON: 200 with the figures, 401 without the right bearer token,
404 for any other path, 405 for another method, 400 for a malformed request.
"""

from __future__ import annotations

import argparse
import datetime
import hmac
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__version__ = "1.0.0"

HEALTH_PATH = "/v1/health"
TOKEN_ENV = "DESKOPS_AGENT_TOKEN"  # noqa: S105 - a variable name, not a secret
LIBVIRT_IMAGES = "/var/lib/libvirt/images"
FALLBACK_DISK_DIR = "/var/tmp"  # noqa: S108 - a probe file made by mkstemp
DEFAULT_LISTEN = "0.0.0.0:9180"  # noqa: S104 - the portal polls it over the network
# Most requests handled at once: a burst (or a scan) must not grow threads without
# bound on a compute node that runs desktops.
MAX_CONCURRENT_REQUESTS = 32
# A client that sends nothing for this long is dropped (seconds).
SOCKET_TIMEOUT = 10.0
PROBE_BYTES = 4096

logger = logging.getLogger("deskops_host_agent")


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")  # noqa: UP017


def read_meminfo(path: str = "/proc/meminfo") -> dict[str, int]:
    """MemTotal and MemAvailable of /proc/meminfo, in MiB."""
    fields: dict[str, int] = {}
    with open(path, encoding="ascii", errors="replace") as meminfo:
        for line in meminfo:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                fields[name.strip()] = int(parts[0])  # kB
    total = fields["MemTotal"]
    if "MemAvailable" in fields:
        available = fields["MemAvailable"]
    else:  # kernels before 3.14: the usual estimate
        available = fields.get("MemFree", 0) + fields.get("Buffers", 0) + fields.get("Cached", 0)
    return {"total": total // 1024, "available": available // 1024}


def read_uptime(path: str = "/proc/uptime") -> float:
    with open(path, encoding="ascii") as uptime:
        return round(float(uptime.read().split()[0]), 1)


def default_disk_dir() -> str:
    """The libvirt images directory when there is one (the disk the VMs live on),
    else /var/tmp."""
    return LIBVIRT_IMAGES if os.path.isdir(LIBVIRT_IMAGES) else FALLBACK_DISK_DIR


class _Write:
    """One small synced write, run in its own thread so a hung disk cannot hold a
    request: the request waits a bounded time and reports the write as unfinished."""

    def __init__(self, directory: str):
        self.directory = directory
        self.started = time.monotonic()
        self.finished = threading.Event()
        self.latency_ms: float | None = None
        self.error: str | None = None
        thread = threading.Thread(target=self._run, name="disk-probe", daemon=True)
        thread.start()

    def _run(self) -> None:
        try:
            began = time.perf_counter()
            handle, path = tempfile.mkstemp(prefix=".deskops-agent-probe-", dir=self.directory)
            try:
                os.write(handle, os.urandom(PROBE_BYTES))
                os.fsync(handle)
                self.latency_ms = round((time.perf_counter() - began) * 1000.0, 3)
            finally:
                os.close(handle)
                os.unlink(path)
        except OSError as exc:
            self.error = f"write in {self.directory} failed: {exc.strerror or exc}"
        finally:
            self.finished.set()


class DiskProbe:
    """Measures the latency of a small write + fsync in `directory`. Requests that
    arrive while a write is under way share it, so at most one probe write is in
    flight however many requests come, and a stuck write is not repeated."""

    def __init__(self, directory: str, timeout: float):
        self.directory = directory
        self.timeout = timeout
        self._lock = threading.Lock()
        self._write: _Write | None = None

    def measure(self) -> dict:
        with self._lock:
            if self._write is None or self._write.finished.is_set():
                self._write = _Write(self.directory)
            write = self._write
        if not write.finished.wait(self.timeout):
            waited = time.monotonic() - write.started
            return {
                "path": self.directory,
                "latency_ms": None,
                "error": f"the write has not finished after {waited:.1f} s",
            }
        return {"path": self.directory, "latency_ms": write.latency_ms, "error": write.error}


class Agent:
    """What the agent knows: its token and how to measure the host."""

    def __init__(self, *, token: str, disk_probe: DiskProbe):
        self._token = token.encode("utf-8")
        self.disk_probe = disk_probe
        self.hostname = socket.gethostname()

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, presented = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(presented.strip().encode("utf-8"), self._token)

    def health(self) -> dict:
        """The figures; one that cannot be read is null, with the reason in `errors`."""
        errors = []
        try:
            one, five, fifteen = os.getloadavg()
            load = {"1m": round(one, 2), "5m": round(five, 2), "15m": round(fifteen, 2)}
        except OSError as exc:
            load = None
            errors.append(f"load average: {exc}")
        try:
            memory = read_meminfo()
        except (OSError, KeyError, ValueError) as exc:
            memory = None
            errors.append(f"memory: {exc!r}")
        try:
            uptime = read_uptime()
        except (OSError, ValueError, IndexError) as exc:
            uptime = None
            errors.append(f"uptime: {exc!r}")
        disk = self.disk_probe.measure()
        if disk["error"]:
            errors.append(f"disk: {disk['error']}")
        return {
            "host": self.hostname,
            "time": _utc_now(),
            "agent_version": __version__,
            "uptime_seconds": uptime,
            "load_average": load,
            "memory_mib": memory,
            "disk": disk,
            "errors": errors,
        }


class Handler(BaseHTTPRequestHandler):
    server_version = f"deskops-host-agent/{__version__}"
    protocol_version = "HTTP/1.1"
    # A request line without a version (garbage, or HTTP/0.9) still gets a status
    # line and headers with its 400.
    default_request_version = "HTTP/1.0"
    timeout = SOCKET_TIMEOUT

    @property
    def agent(self) -> Agent:
        return self.server.agent

    def _send_json(self, status: int, body: dict, headers: dict | None = None) -> None:
        payload = (json.dumps(body) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code, message=None, explain=None):
        """http.server's own refusals (malformed request line, headers too long,
        unsupported method) answer in JSON too, and close the connection."""
        self.close_connection = True
        short = self.responses.get(code, ("error",))[0]
        self._send_json(
            code,
            {"error": short.lower().replace(" ", "_").replace("-", "_"), "detail": message or ""},
        )

    def _route(self) -> None:
        path = self.path.split("?", 1)[0]
        if path != HEALTH_PATH:
            self._send_json(404, {"error": "not_found", "detail": f"only {HEALTH_PATH} exists"})
            return
        if self.command not in ("GET", "HEAD"):
            self._send_json(
                405, {"error": "method_not_allowed", "detail": "use GET"}, {"Allow": "GET, HEAD"}
            )
            return
        if not self.agent.authorized(self.headers.get("Authorization")):
            self._send_json(
                401,
                {"error": "unauthorized", "detail": "a valid bearer token is required"},
                {"WWW-Authenticate": 'Bearer realm="deskops-host-agent"'},
            )
            return
        self._send_json(200, self.agent.health())

    def _handle(self) -> None:
        # A body sent with the request is not wanted; it is not read, so the
        # connection cannot be reused after it.
        if self.headers.get("Content-Length") not in (None, "0") or self.headers.get(
            "Transfer-Encoding"
        ):
            self.close_connection = True
        try:
            self._route()
        except OSError:  # the client went away or stalled (socket.timeout on 3.9)
            self.close_connection = True
        except Exception:
            logger.exception("request %s %s failed", self.command, self.path)
            self.close_connection = True
            try:
                self._send_json(500, {"error": "internal_error", "detail": "see the agent's log"})
            except OSError:
                pass

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    def log_message(self, format, *args):
        logger.info("%s %s", self.address_string(), format % args)


class AgentServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, address, agent: Agent, *, max_concurrent: int = MAX_CONCURRENT_REQUESTS):
        host = address[0]
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.agent = agent
        self._slots = threading.BoundedSemaphore(max_concurrent)
        super().__init__(address, Handler)

    def process_request(self, request, client_address):
        # Bounded threads: when every slot is busy the new connection waits a
        # moment, then is dropped rather than piling up threads.
        if not self._slots.acquire(timeout=1.0):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def parse_listen(value: str) -> tuple[str, int]:
    """'0.0.0.0:9180', '[::]:9180', ':9180' or '9180' → (address, port)."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "", value
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address:port: {value!r}") from None
    if not 0 <= number < 65536:  # 0: any free port (printed at start)
        raise argparse.ArgumentTypeError(f"port out of range: {number}")
    return host, number


def read_token(token_file: str | None) -> str:
    """The token from the file (first line, spaces stripped), else from the
    environment; an agent without a token refuses to start."""
    if token_file:
        with open(token_file, encoding="utf-8") as handle:
            token = handle.readline().strip()
        if os.stat(token_file).st_mode & 0o007:
            logger.warning("the token file %s is readable by every user", token_file)
        source = token_file
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
        source = TOKEN_ENV
    if not token:
        raise SystemExit(f"no token: {source} is empty (set --token-file or {TOKEN_ENV})")
    return token


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="DeskOps host agent: serves the host's health on GET /v1/health."
    )
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=DEFAULT_LISTEN,
        help=f"address:port to listen on (default {DEFAULT_LISTEN})",
    )
    parser.add_argument(
        "--token-file",
        help=f"file holding the bearer token (default: the {TOKEN_ENV} environment variable)",
    )
    parser.add_argument(
        "--disk-dir",
        default=None,
        help=f"directory of the disk-latency probe (default {LIBVIRT_IMAGES} if it exists, "
        f"else {FALLBACK_DISK_DIR})",
    )
    parser.add_argument(
        "--disk-timeout",
        type=float,
        default=2.0,
        help="longest wait for the probe write, in seconds (default 2); keep it below "
        "the portal's HOST_AGENT_TIMEOUT",
    )
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    try:
        token = read_token(args.token_file)
    except OSError as exc:
        logger.error("cannot read the token file: %s", exc)
        return 2
    disk_dir = args.disk_dir or default_disk_dir()
    if not os.path.isdir(disk_dir):
        logger.error("the disk probe directory %s does not exist", disk_dir)
        return 2
    agent = Agent(token=token, disk_probe=DiskProbe(disk_dir, timeout=args.disk_timeout))
    try:
        server = AgentServer(args.listen, agent)
    except OSError as exc:
        logger.error("cannot listen on %s:%s: %s", args.listen[0], args.listen[1], exc)
        return 2

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    logger.info(
        "deskops host agent %s listening on %s:%s, disk probe in %s",
        __version__,
        host,
        port,
        disk_dir,
    )
    # The first line on stdout tells a supervisor (or a test) the port really bound.
    print(json.dumps({"listening": f"{host}:{port}", "port": port}), flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        logger.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
