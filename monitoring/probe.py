"""The synthetic login probe: a scheduled login through the real thin-client API
with a probe account at a probe terminal, so operators learn that the login path
is broken before the call center does.

The probe speaks HTTP to `PROBE_URL` exactly as a thin client would (the web
server, the URL routing and the JSON answers are part of what it checks), records
one `ProbeResult` per run and hands back the desktop it got by disconnecting the
session it opened."""

import http.client
import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from .models import ProbeResult

logger = logging.getLogger(__name__)

CONNECT_PATH = "/api/thin-client/v1/connect"
DISCONNECT_PATH = "/api/thin-client/v1/disconnect"

# Outcomes of answers that are not the API's own: nothing answered, nothing
# answered in time, or something answered that is not the thin-client API.
UNREACHABLE = "unreachable"
TIMEOUT = "timeout"
BAD_ANSWER = "bad_answer"

# A thin-client answer is a few hundred bytes; more than this is not the API.
MAX_ANSWER_BYTES = 64 * 1024

# The desktop fields a thin client needs to open the SPICE connection.
SPICE_FIELDS = ("name", "host", "port", "password")

_DETAIL_MAX = ProbeResult._meta.get_field("detail").max_length
_OUTCOME_MAX = ProbeResult._meta.get_field("outcome").max_length
_VM_NAME_MAX = ProbeResult._meta.get_field("vm_name").max_length

# The probe checks the broker, not whatever proxy the worker's environment names:
# it talks to PROBE_URL directly, as the thin clients on the call-center LAN do.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe_enabled() -> bool:
    """The probe runs only with an account, its password and a terminal."""
    return bool(settings.PROBE_USERNAME and settings.PROBE_PASSWORD and settings.PROBE_TERMINAL)


@dataclass
class _Answer:
    status_code: int | None
    body: object = None  # the decoded JSON, or None when the body was not JSON
    failure: str = ""  # UNREACHABLE or TIMEOUT when no answer came back
    detail: str = ""


def _is_timeout(exc: BaseException) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(reason, TimeoutError) or "timed out" in str(reason)


def _post_json(path: str, payload: dict) -> _Answer:
    """POST a JSON body to the broker; never raises for network trouble or an
    answer that is not JSON."""
    url = settings.PROBE_URL.rstrip("/") + path
    if not url.lower().startswith(("http://", "https://")):
        return _Answer(None, failure=UNREACHABLE, detail=f"PROBE_URL is not an HTTP URL: {url}")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked just above
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with _opener.open(request, timeout=settings.PROBE_TIMEOUT) as response:
            status_code, raw = response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:  # 4xx and 5xx: the answer is in the error
        try:
            status_code, raw = exc.code, exc.read(MAX_ANSWER_BYTES)
        except (OSError, http.client.HTTPException) as read_error:
            return _Answer(exc.code, detail=f"the answer could not be read: {read_error}")
        finally:
            exc.close()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # ValueError: a PROBE_URL that is not a URL at all.
        if _is_timeout(exc):
            return _Answer(None, failure=TIMEOUT, detail=f"no answer from {url} in time")
        reason = getattr(exc, "reason", exc)
        return _Answer(None, failure=UNREACHABLE, detail=f"{url}: {reason}")
    except http.client.HTTPException as exc:  # a garbled status line, headers or body
        return _Answer(None, failure=BAD_ANSWER, detail=f"{url}: {type(exc).__name__}: {exc}")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):  # not JSON, or cut off, or absurdly nested
        body = None
    return _Answer(status_code, body=body, detail="" if body is not None else _snippet(raw))


def _snippet(raw: bytes) -> str:
    text = raw[:120].decode("utf-8", errors="replace").strip()
    return f"not JSON: {' '.join(text.split())!r}" if text else "an empty answer"


def _classify(answer: _Answer) -> tuple[bool, str, str, str, str]:
    """(ok, outcome, vm name, session id, detail) of a connect answer."""
    if answer.failure:
        return False, answer.failure, "", "", answer.detail
    body, code = answer.body, answer.status_code
    if not isinstance(body, dict):
        return False, BAD_ANSWER, "", "", f"HTTP {code}, {answer.detail or 'not a JSON object'}"
    if code == 200:
        desktop = body.get("desktop")
        if (
            body.get("status") == "ready"
            and isinstance(desktop, dict)
            and all(desktop.get(field) for field in SPICE_FIELDS)
        ):
            session = str(body.get("session") or "")
            return True, "ready", str(desktop["name"]), session, f"pool {desktop.get('pool', '?')}"
        return False, BAD_ANSWER, "", "", "HTTP 200 without SPICE connection info"
    if code == 202 and body.get("status") == "preparing":
        retry_after = body.get("retry_after")
        return False, "preparing", "", "", f"no desktop ready; retry after {retry_after} s"
    error = body.get("error")
    if isinstance(error, str) and error:
        return False, error, "", "", str(body.get("detail") or "")
    return False, BAD_ANSWER, "", "", f"HTTP {code} without an error code"


def _disconnect(session_id: str) -> str:
    """End the probe's session so it holds no desktop; '' when that worked, else
    what went wrong."""
    if not session_id:
        return "no session id to disconnect"
    answer = _post_json(DISCONNECT_PATH, {"session": session_id})
    if answer.failure:
        return f"disconnect failed: {answer.detail}"
    body = answer.body if isinstance(answer.body, dict) else None
    if answer.status_code == 200 and body and body.get("status") == "disconnected":
        return ""
    reason = body.get("error") if body else answer.detail
    return f"disconnect failed: HTTP {answer.status_code} {reason or ''}".rstrip()


def _notify_dashboard() -> None:
    try:
        from monitoring import events
    except ImportError:
        return
    events.dashboard_changed("probe")


def probe_login() -> ProbeResult | None:
    """Log the probe account in at the probe terminal through the thin-client API
    and record how it went: `ok` only for a 200 with SPICE connection info. A
    successful login is followed by a disconnect, so the probe does not keep a
    session open; a failed disconnect is noted in `detail` but does not turn the
    login into a failure. Network errors, timeouts and answers that are not the
    API's are recorded, never raised. Returns None, and does nothing, when the
    probe is not configured."""
    if not probe_enabled():
        return None
    started = time.perf_counter()
    answer = _post_json(
        CONNECT_PATH,
        {
            "username": settings.PROBE_USERNAME,
            "password": settings.PROBE_PASSWORD,
            "terminal": settings.PROBE_TERMINAL,
        },
    )
    latency_ms = (time.perf_counter() - started) * 1000
    ok, outcome, vm_name, session_id, detail = _classify(answer)
    if ok:
        problem = _disconnect(session_id)
        if problem:
            detail = f"{detail}; {problem}" if detail else problem
    result = ProbeResult.objects.create(
        ok=ok,
        status_code=answer.status_code,
        outcome=outcome[:_OUTCOME_MAX],
        latency_ms=round(latency_ms, 1),
        vm_name=vm_name[:_VM_NAME_MAX],
        detail=detail[:_DETAIL_MAX],
    )
    log = logger.info if ok else logger.warning
    log("login probe: %s in %.0f ms %s", outcome, latency_ms, detail)
    _notify_dashboard()
    return result


def probe_results_prune() -> int:
    """Delete probe results older than `PROBE_RETENTION_DAYS`; returns how many."""
    cutoff = timezone.now() - timedelta(days=settings.PROBE_RETENTION_DAYS)
    deleted, _ = ProbeResult.objects.filter(at__lt=cutoff).delete()
    return deleted
