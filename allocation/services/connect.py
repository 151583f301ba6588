"""The thin client's connect call: check the terminal in, match the allocator,
reuse a binding or claim a ready VM, and hand out SPICE connection info."""

import logging
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.directory import directory_authenticate
from allocation.errors import (
    CloudUnreachable,
    InvalidCredentials,
    NoAllocator,
    TerminalNotEnrolled,
)
from allocation.models import Allocator, Binding, DesktopSession, Terminal
from allocation.selectors import allocator_for, binding_active_for, effective_policy
from allocation.throttling import (
    login_attempt_check,
    login_failure_record,
    login_success_record,
)
from cloud.drivers import SpiceConsole
from cloud.models import Region
from pools.choices import VMState
from pools.models import VMPool
from pools.services import pools_refill_soon, vm_claim_ready, vm_return_to_pool
from portal.services import audit_record

from .sessions import binding_release, desktop_console, sessions_end_superseded

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectResult:
    """A desktop with its console (`ready`), or how long to wait (`preparing`)."""

    status: str
    session: DesktopSession | None = None
    console: SpiceConsole | None = None
    retry_after: int | None = None
    # For the connect records: a VM claimed from the ready ones now (a cache hit)
    # rather than the user's existing binding, and the pool and site concerned.
    claimed: bool = False
    pool_id: int | None = None
    site_id: int | None = None


def terminal_check_in(*, serial: str, source_ip: str | None = None) -> Terminal:
    """Note that a terminal called in. An unknown one is recorded as pending so an
    operator can enroll it; only an enrolled, enabled terminal passes."""
    # With its site: allocator rules match on it next.
    terminal, created = Terminal.objects.select_related("site").get_or_create(
        serial=serial, defaults={"status": TerminalStatus.PENDING}
    )
    Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=timezone.now(), last_ip=source_ip)
    if created:
        audit_record(action="terminal.pending", obj=terminal, source_ip=source_ip)
    if not terminal.may_connect:
        raise TerminalNotEnrolled()
    return terminal


def _pools_in_order(allocator: Allocator) -> list[VMPool]:
    """The allocator's pools in its order of preference, but pools in a region whose
    cloud did not answer lately after the others (a fallback pool in another region
    serves while the preferred region is down)."""
    links = allocator.pool_links.select_related("pool__region").filter(
        pool__enabled=True, pool__region__enabled=True
    )
    pools = [link.pool for link in links]
    return sorted(pools, key=lambda pool: not pool.region.reachable)


class _RegionFailed(Exception):
    """The cloud of a VM this connect had just claimed did not answer."""

    def __init__(self, region_id: int):
        self.region_id = region_id


def desktop_connect(
    *,
    username: str,
    password: str,
    terminal_serial: str,
    request=None,
    request_id: str = "",
    source_ip: str | None = None,
    retry_after: int = 10,
) -> ConnectResult:
    """Serve a thin client's login, as in the design's typical login: authenticate,
    check the terminal in, match the allocator, reuse the binding or claim a ready
    VM from the allocator's pools (race-free), bind it per policy and return SPICE
    connection info. With no VM ready the answer is `preparing` and a refill is
    queued. If the cloud fails while the console is fetched, a VM claimed by this
    call goes back to the pool, so a failed connect loses nothing."""
    user_failures = login_attempt_check(username=username, terminal_serial=terminal_serial)
    user = directory_authenticate(request, username=username, password=password)
    if user is None or not user.is_active:
        login_failure_record(username=username, terminal_serial=terminal_serial)
        raise InvalidCredentials()
    if user_failures:
        login_success_record(username=username)
    terminal = terminal_check_in(serial=terminal_serial, source_ip=source_ip)
    allocator = allocator_for(user=user, terminal=terminal)
    if allocator is None:
        raise NoAllocator()

    pools = _pools_in_order(allocator)
    while True:
        try:
            return _serve(
                user=user,
                terminal=terminal,
                allocator=allocator,
                pools=pools,
                request_id=request_id,
                source_ip=source_ip,
                retry_after=retry_after,
            )
        except _RegionFailed as failed:
            # Try the allocator's pools in other regions before giving up.
            Region.objects.filter(pk=failed.region_id).update(reachable=False)
            pools = [pool for pool in pools if pool.region_id != failed.region_id]
            if not pools:
                raise CloudUnreachable(retry_after=retry_after) from None


def _serve(
    *,
    user,
    terminal: Terminal,
    allocator: Allocator,
    pools: list[VMPool],
    request_id: str,
    source_ip: str | None,
    retry_after: int,
) -> ConnectResult:
    """Reuse the binding or claim a VM from `pools`, then fetch its console."""
    with transaction.atomic():
        # One allocation per user at a time: a user who connects twice at once
        # waits here and then finds the binding the first call made.
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list(
            "pk", flat=True
        ).first()
        binding = binding_active_for(allocator=allocator, user=user, terminal=terminal)
        claimed_now = False
        if binding is not None and binding.vm.state != VMState.IN_USE:
            # The bound VM is gone (error, lost, deleted): release the binding so a
            # fresh VM takes its place below.
            binding_release(binding=binding, reason="vm_unavailable", request_id=request_id)
            binding = None
        if binding is None:
            vm = next((vm for pool in pools if (vm := vm_claim_ready(pool=pool))), None)
            if vm is None:
                transaction.on_commit(lambda: pools_refill_soon([p.pk for p in pools]))
                return ConnectResult(
                    status="preparing",
                    retry_after=retry_after,
                    pool_id=pools[0].pk if pools else None,
                    site_id=terminal.site_id,
                )
            policy = effective_policy(allocator=allocator, terminal=terminal)
            binding = Binding.objects.create(
                allocator=allocator,
                kind=policy,
                user=user if policy in (BindingPolicy.USER, BindingPolicy.FLOATING) else None,
                seat=terminal.seat if policy == BindingPolicy.SEAT else "",
                terminal=terminal if policy == BindingPolicy.TERMINAL else None,
                vm=vm,
            )
            claimed_now = True
            audit_record(
                action="vm.assign",
                obj=vm,
                actor=user.get_username(),
                after={"binding": binding.pk, "kind": policy, "allocator": allocator.name},
                request_id=request_id,
                source_ip=source_ip,
            )
            # Keep the pool topped up behind the VM just handed out.
            transaction.on_commit(lambda: pools_refill_soon([vm.pool_id]))
        vm = binding.vm
        session = DesktopSession.objects.create(
            user=user, terminal=terminal, vm=vm, binding=binding, client_ip=source_ip
        )
        if not claimed_now:
            # A binding made just now has no earlier session to replace.
            sessions_end_superseded(binding=binding, keep=session)

    try:
        console = desktop_console(vm=vm)
    except CloudUnreachable as exc:
        logger.warning("console of %s unavailable: %s", vm.name, exc.__cause__ or exc)
        _connect_undo(session=session, binding=binding if claimed_now else None, reason="cloud")
        if claimed_now:
            raise _RegionFailed(vm.pool.region_id) from exc
        raise CloudUnreachable(retry_after=retry_after) from exc
    if console is None:  # a shut-off desktop is starting
        _connect_undo(session=session, binding=None, reason="starting")
        return ConnectResult(
            status="preparing",
            retry_after=retry_after,
            pool_id=vm.pool_id,
            site_id=terminal.site_id,
        )
    return ConnectResult(
        status="ready",
        session=session,
        console=console,
        claimed=claimed_now,
        pool_id=vm.pool_id,
        site_id=terminal.site_id,
    )


def _connect_undo(*, session: DesktopSession, binding: Binding | None, reason: str) -> None:
    """Take back what a connect that could not finish wrote: end its session and,
    when it had just claimed the VM, put the VM back among the ready ones."""
    with transaction.atomic():
        DesktopSession.objects.filter(pk=session.pk).update(
            ended_at=timezone.now(), ended_reason=reason
        )
        if binding is not None:
            Binding.objects.filter(pk=binding.pk).update(released_at=timezone.now())
            vm_return_to_pool(vm=binding.vm)
            audit_record(
                action="binding.release",
                obj=binding,
                actor=session.user.get_username(),
                before={"vm": binding.vm_id, "kind": binding.kind},
                after={"reason": f"connect_failed:{reason}", "vm_returned_to_pool": True},
            )
