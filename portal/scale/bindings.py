"""Desktops in use in a generated world: which user at which terminal holds which
VM. Each binding is planned the way a connect would make it (the allocator the
real matching picks for the user's groups and the terminal's site and tags, the
policy in force at that terminal), so the user logging in again at that terminal
gets the same VM back; then come the sessions, released history and swaps."""

from dataclasses import dataclass
from datetime import timedelta

from allocation.choices import BindingPolicy
from allocation.matching import LoginFacts, Rule, first_match
from allocation.models import Allocator, Binding, DesktopSession, Terminal, VMSwap
from pools.models import VM, VMPool

from .context import Context, insert

STAFF = ["admin", "ops-anna", "ops-marc", "hd-sara", "hd-tom", "system"]


@dataclass
class PlannedBinding:
    """A binding to be: its VM is made for it afterwards (`build_vms`)."""

    user: object
    terminal: Terminal
    allocator: Allocator
    kind: str
    pool: VMPool
    vm: VM | None = None


def _rules(ctx: Context) -> list[Rule]:
    return [
        Rule(
            key=a.pk,
            priority=a.priority,
            is_default=a.is_default,
            groups=frozenset(ctx.allocator_groups.get(a.pk, ())),
            sites=frozenset(ctx.allocator_sites.get(a.pk, ())),
            terminal_tags=frozenset(a.terminal_tags),
            ou_subtrees=frozenset(a.ou_subtrees),
        )
        for a in ctx.allocators
        if a.enabled
    ]


def plan_bindings(ctx: Context) -> None:
    """One binding per user for the first `bindings` users, each at a terminal of
    its own (terminals that may connect first)."""
    rules = _rules(ctx)
    by_pk = {a.pk: a for a in ctx.allocators}
    usable = [t for t in ctx.terminals if t.may_connect]
    terminals = usable + [t for t in ctx.terminals if not t.may_connect]
    ctx.plan = []
    for i in range(ctx.size.bindings):
        user, terminal = ctx.users[i], terminals[i]
        facts = LoginFacts(
            groups=frozenset({ctx.user_groups[user.pk]}),
            site=terminal.site.name if terminal.site else None,
            terminal_tags=frozenset(terminal.tags),
        )
        match = first_match(rules, facts)
        allocator = by_pk[match.key] if match else ctx.allocators[i % len(ctx.allocators)]
        kind = allocator.binding_policy
        if kind == BindingPolicy.SEAT and not terminal.seat:
            kind = BindingPolicy.FLOATING  # as a connect at a terminal without a seat
        pools = ctx.allocator_pools[allocator.pk]
        # Most desktops come from the allocator's first pool, some from its fallback.
        pool = pools[0] if len(pools) == 1 or ctx.rng.random() < 0.8 else pools[1]
        ctx.plan.append(PlannedBinding(user, terminal, allocator, kind, pool))


def build_bindings(ctx: Context) -> None:
    """The planned bindings with a session each (a fifth of the users bound by
    user, seat or terminal have logged off and keep their VM), released history,
    and help-desk swaps."""
    size = ctx.size
    ctx.active = insert(
        Binding,
        [
            Binding(
                allocator=planned.allocator,
                kind=planned.kind,
                user=planned.user
                if planned.kind in (BindingPolicy.USER, BindingPolicy.FLOATING)
                else None,
                seat=planned.terminal.seat if planned.kind == BindingPolicy.SEAT else "",
                terminal=planned.terminal if planned.kind == BindingPolicy.TERMINAL else None,
                vm=planned.vm,
                data_volume_id=ctx.uid() if planned.kind == BindingPolicy.USER else "",
                created_at=planned.vm.assigned_at,
            )
            for planned in ctx.plan
        ],
    )
    released = []
    for _ in range(size.released_bindings):
        allocator = ctx.rng.choice(ctx.allocators)
        created = ctx.ago()
        released.append(
            Binding(
                allocator=allocator,
                kind=allocator.binding_policy,
                user=ctx.rng.choice(ctx.users),
                vm=ctx.rng.choice(ctx.vms),
                created_at=created,
                released_at=created + timedelta(hours=ctx.rng.uniform(0.5, 9)),
            )
        )
    insert(Binding, released)
    sessions = []
    for i, (planned, binding) in enumerate(zip(ctx.plan, ctx.active, strict=True)):
        started = max(binding.created_at, ctx.now - timedelta(hours=ctx.rng.uniform(0, 9)))
        ended = i % 5 == 4 and planned.kind != BindingPolicy.FLOATING
        sessions.append(
            DesktopSession(
                user=planned.user,
                terminal=planned.terminal,
                vm=binding.vm,
                binding=binding,
                started_at=started,
                last_heartbeat_at=ctx.now - timedelta(seconds=20),
                ended_at=started + timedelta(hours=1) if ended else None,
                ended_reason="disconnect" if ended else "",
                client_ip=planned.terminal.last_ip,
            )
        )
    for binding in released:
        sessions.append(
            DesktopSession(
                user=binding.user,
                terminal=ctx.rng.choice(ctx.terminals),
                vm=binding.vm,
                binding=binding,
                started_at=binding.created_at,
                ended_at=binding.released_at,
                ended_reason="disconnect",
            )
        )
    insert(DesktopSession, sessions)
    swaps = []
    for i in range(size.swaps):
        binding = ctx.active[i % len(ctx.active)]
        requested = ctx.ago(days=7)
        pending = i % 50 == 49 and i < len(ctx.active)
        swaps.append(
            VMSwap(
                binding=binding,
                pool=binding.vm.pool,
                old_vm=ctx.rng.choice(ctx.vms),
                new_vm=None if pending else binding.vm,
                status=VMSwap.Status.PENDING if pending else VMSwap.Status.DONE,
                reason=f"ticket INC{100000 + i}",
                actor=STAFF[i % 4 + 1],
                request_id=ctx.uid(),
                requested_at=requested,
                completed_at=None if pending else requested + timedelta(seconds=40),
            )
        )
    insert(VMSwap, swaps)
    ctx.count("active bindings", len(ctx.active))
    ctx.count("released bindings", len(released))
    ctx.count("sessions", len(sessions))
    ctx.count("swaps", len(swaps))
