"""Polling of the host agents (agent/deskops_host_agent.py) that run on compute nodes.

Each host with an `agent_url` is asked for `GET /v1/health`; the answer's load,
memory and disk latency are kept on the host, and the measured round trip of the
request becomes the host's `response_ms`, the LT of the placement rule. Hosts are
polled in parallel by a bounded pool of threads that only speak HTTP; the
database is read before and written after, in a few queries."""

import http.client
import json
import logging
import math
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.utils import timezone

from .models import Host

logger = logging.getLogger(__name__)

HEALTH_PATH = "v1/health"
# An answer larger than this is not a health report.
MAX_ANSWER_BYTES = 64 * 1024
# Figures beyond this are nonsense (and would not fit the host's integer columns).
MAX_FIGURE = 2**31 - 1


@dataclass(frozen=True)
class AgentReading:
    """What one poll of one agent gave: the figures (`answered`), or the reason it
    failed in `error`. An answer may carry an `error` too: what the agent could not
    measure."""

    error: str = ""
    answered: bool = False
    response_ms: float | None = None
    load_1m: float | None = None
    memory_free_mb: int | None = None
    disk_latency_ms: float | None = None


def health_url(agent_url: str) -> str:
    """The health address of an agent given by its base address."""
    return urljoin(agent_url if agent_url.endswith("/") else agent_url + "/", HEALTH_PATH)


def _number(value, kind=float):
    """A figure from the answer, or None when it is missing or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value < MAX_FIGURE:
        return None
    return kind(value)


def _reading_from(answer: dict, response_ms: float) -> AgentReading:
    load = answer.get("load_average")
    memory = answer.get("memory_mib")
    disk = answer.get("disk")
    # The agent answered but could not measure everything (a disk write that did
    # not finish in time is the one that matters): say so on the host.
    problems = answer.get("errors")
    problems = [str(p) for p in problems if p] if isinstance(problems, list) else []
    return AgentReading(
        error="; ".join(problems)[:255],
        answered=True,
        response_ms=response_ms,
        load_1m=_number(load.get("1m")) if isinstance(load, dict) else None,
        memory_free_mb=_number(memory.get("available"), int) if isinstance(memory, dict) else None,
        disk_latency_ms=_number(disk.get("latency_ms")) if isinstance(disk, dict) else None,
    )


def agent_poll(agent_url: str, *, token: str, timeout: float) -> AgentReading:
    """Ask one agent for its health. Never raises: a failure comes back as a
    reading with a short `error` ("timeout", "401 unauthorized", "connection
    refused", ...). Redirects are not followed, so the token goes nowhere else."""
    url = urlsplit(health_url(agent_url))
    if url.scheme not in ("http", "https") or not url.hostname:
        return AgentReading(error=f"not an http(s) address: {agent_url}"[:255])
    try:
        port = url.port
    except ValueError:
        return AgentReading(error=f"bad port in {agent_url}"[:255])
    if url.scheme == "https":
        connection = http.client.HTTPSConnection(
            url.hostname, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(url.hostname, port, timeout=timeout)
    path = url.path + (f"?{url.query}" if url.query else "")
    started = time.perf_counter()
    try:
        connection.request(
            "GET",
            path,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
        )
        response = connection.getresponse()
        body = response.read(MAX_ANSWER_BYTES + 1)
        response_ms = (time.perf_counter() - started) * 1000.0
    except TimeoutError:
        return AgentReading(error="timeout")
    except ConnectionRefusedError:
        return AgentReading(error="connection refused")
    except socket.gaierror:
        return AgentReading(error=f"unknown host {url.hostname}"[:255])
    except ssl.SSLError as exc:
        return AgentReading(error=f"TLS error: {exc.reason or exc}"[:255])
    except (OSError, ValueError, http.client.HTTPException) as exc:
        return AgentReading(error=(str(exc) or type(exc).__name__)[:255])
    finally:
        connection.close()
    if response.status != 200:
        return AgentReading(error=f"{response.status} {response.reason.lower()}".strip()[:255])
    if len(body) > MAX_ANSWER_BYTES:
        return AgentReading(error="answer too large")
    try:
        answer = json.loads(body)
    except ValueError:
        return AgentReading(error="answer is not JSON")
    if not isinstance(answer, dict):
        return AgentReading(error="answer is not a JSON object")
    return _reading_from(answer, response_ms)


def hosts_poll_agents(*, region_id: int | None = None) -> dict:
    """Poll every host that has an agent, in parallel, and store what each said.

    A good answer sets the figures and `response_ms`, stamps `agent_reported_at`
    and clears `agent_error` (or sets it to what the agent could not measure); a
    failed poll sets `agent_error` and leaves the last figures in place. Without
    `HOST_AGENT_TOKEN` nothing is polled. Two polls at once are harmless: each
    writes what it measured. With `region_id`, only that region's hosts. Returns
    the counts and the failed hosts' errors."""
    token = settings.HOST_AGENT_TOKEN
    if not token:
        return {"polled": 0, "skipped": "HOST_AGENT_TOKEN is not set"}
    hosts = Host.objects.exclude(agent_url="")
    if region_id is not None:
        hosts = hosts.filter(region_id=region_id)
    hosts = list(hosts.only("id", "name", "agent_url"))
    if not hosts:
        return {"polled": 0, "ok": 0, "failed": 0}
    timeout = settings.HOST_AGENT_TIMEOUT
    workers = max(1, min(settings.HOST_AGENT_CONCURRENCY, len(hosts)))

    def poll(host: Host) -> AgentReading:
        try:
            return agent_poll(host.agent_url, token=token, timeout=timeout)
        except Exception as exc:  # one odd host must not stop the others' update
            logger.exception("polling the agent of %s failed", host.name)
            return AgentReading(error=f"poll failed: {exc}"[:255])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="host-agent") as executor:
        readings = list(executor.map(poll, hosts))

    now = timezone.now()
    answered, failed, errors = [], [], {}
    for host, reading in zip(hosts, readings, strict=True):
        if not reading.answered:
            host.agent_error = reading.error
            failed.append(host)
            errors[host.name] = reading.error
            logger.info("host agent of %s: %s", host.name, reading.error)
            continue
        host.agent_error = reading.error
        host.agent_reported_at = now
        host.response_ms = round(reading.response_ms, 3)
        host.load_1m = reading.load_1m
        host.memory_free_mb = reading.memory_free_mb
        host.disk_latency_ms = reading.disk_latency_ms
        answered.append(host)
    if answered:
        Host.objects.bulk_update(
            answered,
            [
                "agent_error",
                "agent_reported_at",
                "response_ms",
                "load_1m",
                "memory_free_mb",
                "disk_latency_ms",
            ],
            batch_size=500,
        )
    if failed:
        Host.objects.bulk_update(failed, ["agent_error"], batch_size=500)
    return {"polled": len(hosts), "ok": len(answered), "failed": len(failed), "errors": errors}
