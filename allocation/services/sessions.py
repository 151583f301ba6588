"""A desktop session after the connect: consoles, heartbeats, disconnects, and the
release of floating desktops (at disconnect or when the terminal goes quiet)."""

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from allocation.choices import BindingPolicy
from allocation.errors import CloudUnreachable, SessionNotFound
from allocation.models import Binding, DesktopSession
from cloud.drivers import SpiceConsole, driver_for
from cloud.errors import CloudError, CloudUnavailable
from pools.choices import VMState
from pools.models import VM
from pools.services import vm_recycle
from portal.services import audit_record

logger = logging.getLogger(__name__)


def binding_release(
    *, binding: Binding, reason: str, actor: str = "system", request_id: str = ""
) -> bool:
    """End a binding; a floating desktop goes on to be recycled. Returns whether the
    binding was still active (releasing twice does nothing the second time)."""
    released = Binding.objects.filter(pk=binding.pk, released_at__isnull=True).update(
        released_at=timezone.now()
    )
    if not released:
        return False
    audit_record(
        action="binding.release",
        obj=binding,
        actor=actor,
        before={"vm": binding.vm_id, "kind": binding.kind},
        after={"reason": reason},
        request_id=request_id,
    )
    if binding.kind == BindingPolicy.FLOATING:
        vm_recycle(vm=binding.vm)
    return True


def desktop_console(*, vm: VM) -> SpiceConsole | None:
    """Fresh SPICE connection info for a VM, or `None` while the VM is starting: a
    bound VM that was shut off is started here, and the thin client is told to come
    back. Raises `CloudUnreachable` when the cloud does not answer."""
    driver = driver_for(vm.pool.region)
    try:
        return driver.spice_console(vm.server_id)
    except CloudUnavailable as exc:
        raise CloudUnreachable() from exc
    except CloudError as exc:
        first_error = exc
    try:
        status = driver.get_server(vm.server_id).status
        if status in {"BUILD", "REBUILD", "REBOOT", "HARD_REBOOT"}:
            return None  # being rebuilt or rebooted (e.g. by the help desk)
        if status != "SHUTOFF":
            raise CloudUnreachable(f"The desktop cannot be reached: {first_error}")
        logger.info("starting %s, which was shut off", vm.name)
        driver.start_server(vm.server_id)
        return driver.spice_console(vm.server_id)
    except CloudUnavailable as exc:
        raise CloudUnreachable() from exc
    except CloudError:
        # Started, but not running yet (a real cloud takes a while): come back.
        return None


def _session_for(*, session_id: str, terminal_serial: str | None = None) -> DesktopSession:
    try:
        key = uuid.UUID(str(session_id))
    except ValueError as exc:
        raise SessionNotFound() from exc
    sessions = DesktopSession.objects.select_related("vm__pool__region", "binding", "terminal")
    if terminal_serial is not None:
        sessions = sessions.filter(terminal__serial=terminal_serial)
    session = sessions.filter(pk=key).first()
    if session is None:
        raise SessionNotFound()
    return session


def session_active(*, session_id: str) -> DesktopSession:
    """An open session by id (the id is what the thin client holds)."""
    session = _session_for(session_id=session_id)
    if session.ended_at is not None:
        raise SessionNotFound("That desktop session has ended; connect again.")
    return session


def _session_end(*, session: DesktopSession, reason: str, request_id: str = "") -> bool:
    with transaction.atomic():
        ended = DesktopSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=timezone.now(), ended_reason=reason
        )
        if ended and session.binding and session.binding.kind == BindingPolicy.FLOATING:
            binding_release(
                binding=session.binding,
                reason=reason,
                actor=session.user.get_username(),
                request_id=request_id,
            )
    return bool(ended)


def session_disconnect(*, session_id: str, request_id: str = "") -> DesktopSession:
    """The thin client is done. A floating desktop is released and recycled; a
    bound one stays with its user, seat or terminal. Disconnecting twice is fine."""
    session = _session_for(session_id=session_id)
    _session_end(session=session, reason="disconnect", request_id=request_id)
    session.refresh_from_db()
    return session


def session_heartbeat(*, session_id: str, terminal_serial: str) -> str:
    """Record that the thin client is alive; answer `reconnect` when its session no
    longer points at the user's desktop (the desktop was swapped or moved, or the
    session was ended), else `none`."""
    session = _session_for(session_id=session_id, terminal_serial=terminal_serial)
    binding = session.binding
    current = (
        session.ended_at is None
        and binding is not None
        and binding.released_at is None
        and binding.vm_id == session.vm_id
        and session.vm.state == VMState.IN_USE
    )
    if not current:
        return "reconnect"
    DesktopSession.objects.filter(pk=session.pk).update(last_heartbeat_at=timezone.now())
    return "none"


def sessions_end_superseded(*, binding: Binding, keep: DesktopSession) -> int:
    """A new connect on the same binding replaces the binding's older open sessions
    (the thin client reconnected, or the user moved to another terminal)."""
    return (
        DesktopSession.objects.filter(binding=binding, ended_at__isnull=True)
        .exclude(pk=keep.pk)
        .update(ended_at=timezone.now(), ended_reason="superseded")
    )


def sessions_expire_idle() -> int:
    """End floating sessions whose thin client has gone quiet (no heartbeat, or no
    connect, for `FLOATING_IDLE_TIMEOUT` seconds) and recycle their desktops, so a
    terminal switched off at the end of a shift does not hold a VM for ever."""
    cutoff = timezone.now() - timedelta(seconds=settings.FLOATING_IDLE_TIMEOUT)
    quiet = (
        DesktopSession.objects.filter(ended_at__isnull=True, binding__kind=BindingPolicy.FLOATING)
        .annotate(last_seen=Coalesce("last_heartbeat_at", "started_at"))
        .filter(Q(last_seen__lt=cutoff))
        .select_related("binding__vm", "user")
    )
    return sum(_session_end(session=session, reason="idle") for session in quiet)
