"""gunicorn settings of the DeskOps web tier (pages, the ops API and the
thin-client API over WSGI; the live dashboard's websockets are daphne's).

Every figure can be changed from the environment (the systemd unit's
EnvironmentFile, or `-e` of a container), so one file serves every node:

    gunicorn --config deploy/gunicorn.conf.py portal.wsgi:application
"""

import os
from pathlib import Path


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _bool(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    return default if not value else value in ("1", "true", "yes", "on")


# Behind the reverse proxy on the same machine; a container publishes 0.0.0.0.
bind = [os.environ.get("GUNICORN_BIND", "127.0.0.1:8001")]

# The usual rule for a CPU- and database-bound WSGI app: two per core, plus one.
workers = _int("GUNICORN_WORKERS", 2 * (os.cpu_count() or 1) + 1)
# One thread per worker by default (sync workers): every worker holds one database
# connection (DATABASE_CONN_MAX_AGE keeps it open), so the count of PostgreSQL
# connections stays workers × nodes. More threads overlap the waits on LDAP.
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"

# A request may wait on a slow cloud (OPENSTACK_API_TIMEOUT with retries) or on the
# directory; past this a worker is killed and replaced. The proxy waits a little
# longer (proxy_read_timeout in deploy/nginx/deskops.conf).
timeout = _int("GUNICORN_TIMEOUT", 120)
# On stop or reload, requests under way get this long to finish.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# The proxy keeps connections to us open; keep them a little longer than it does.
keepalive = _int("GUNICORN_KEEPALIVE", 75)
# Recycle a worker now and then so a slow leak never grows without bound; the
# jitter keeps the workers from all restarting at once.
max_requests = _int("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = max(1, max_requests // 10) if max_requests else 0

# Load Django once in the master: workers fork already warm and share memory.
# A code change then needs a restart, not a HUP.
preload_app = _bool("GUNICORN_PRELOAD", True)

# Heartbeat files in memory rather than on a disk that may stall (they hold no
# data, only a timestamp each worker touches).
_SHM = Path("/dev/shm")  # noqa: S108
worker_tmp_dir = str(_SHM) if _SHM.is_dir() else None

# Access log on stdout (journald or the container log): client as the proxy saw
# it, the request, status, size, duration in ms and the request id that the audit
# trail and the application log carry.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = (
    '%(h)s fwd=%({x-forwarded-for}i)s "%(r)s" %(s)s %(B)s %(M)sms '
    'rid=%({x-request-id}o)s ua="%(a)s"'
)
errorlog = "-"
# gunicornc's control socket (worker status, scaling at run time): in the unit's
# runtime folder under systemd (RUNTIME_DIRECTORY), else off, rather than in the
# service user's home.
_runtime = os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET") or (
    str(Path(_runtime) / "gunicorn.ctl") if _runtime else ""
)
control_socket_disable = not control_socket
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "deskops-web"


def _fresh_metrics_folder() -> None:
    """With several workers, prometheus_client keeps each worker's counters in
    files under PROMETHEUS_MULTIPROC_DIR (set for the web tier only: every process
    that imports the app needs the folder). Files of a previous run must go, or
    their counts would be added again. Done while this file is read, because a
    preloaded app creates its metrics before gunicorn's start hooks run; a reload
    (HUP) reads the file again in the same master and must keep the counts."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or os.environ.get("DESKOPS_METRICS_FOLDER_READY") == str(os.getpid()):
        return
    path = Path(directory)
    if path.is_dir():
        for entry in path.iterdir():
            if entry.is_file() and entry.suffix == ".db":
                entry.unlink()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["DESKOPS_METRICS_FOLDER_READY"] = str(os.getpid())


_fresh_metrics_folder()


def child_exit(server, worker):
    """A worker that exits (recycled or killed) leaves its gauges behind unless
    marked dead; its counters stay and keep adding up."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
