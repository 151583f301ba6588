"""The people side of a generated world: sites, their terminals, the thin-client
users with their groups, and the allocator rules that serve them."""

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, AllocatorPool, Site, Terminal

from .context import Context, insert

FIRST_NAMES = ["Li", "Wang", "Zhang", "Liu", "Chen", "Yang", "Anna", "Marc", "Sara", "Tom"]
LAST_NAMES = ["Zhao", "Huang", "Zhou", "Wu", "Xu", "Sun", "Meyer", "Rossi", "Silva", "Kim"]
# The groups users belong to (one each) and allocators match on.
GROUPS = 8


def build_sites_and_terminals(ctx: Context) -> None:
    """Terminals at sites, most enrolled (one in 25 still pending) and enabled."""
    size, p = ctx.size, ctx.prefix
    ctx.sites = insert(
        Site,
        [Site(name=f"{p}-site-{i:02d}", label=f"Site {i} ({p})") for i in range(size.sites)],
    )
    ctx.terminals = []
    for i in range(size.terminals):
        site = ctx.sites[i % size.sites]
        enrolled = i % 25 != 7
        ctx.terminals.append(
            Terminal(
                serial=f"TC-{p}-{i:05d}",
                mac_address=ctx.mac(i),
                site=site if enrolled else None,
                seat=f"{site.name}-seat-{i:05d}" if enrolled else "",
                tags=["probe"] if i % 500 == 3 else (["floor-2"] if i % 2 else []),
                status=TerminalStatus.ENROLLED if enrolled else TerminalStatus.PENDING,
                enabled=i % 200 != 11,
                last_seen_at=ctx.ago(days=3),
                last_ip=ctx.address(172, i),
            )
        )
    insert(Terminal, ctx.terminals)
    ctx.count("sites", len(ctx.sites))
    ctx.count("terminals", len(ctx.terminals))


def build_users(ctx: Context) -> None:
    """Thin-client users `<prefix>-user<n>`, each in one of the world's groups.
    They all share one password, hashed once: every user gets the same encoded
    hash, which the real password hasher still checks at each login."""
    size, p = ctx.size, ctx.prefix
    ctx.groups = [Group.objects.get_or_create(name=f"{p}-group-{i}")[0] for i in range(GROUPS)]
    encoded = ctx.password or make_password(None)
    User = get_user_model()
    ctx.users = insert(
        User,
        [
            User(
                username=f"{p}-user{i}",
                first_name=FIRST_NAMES[i % len(FIRST_NAMES)],
                last_name=LAST_NAMES[(i // len(FIRST_NAMES)) % len(LAST_NAMES)],
                password=encoded,
                last_login=ctx.ago(days=7),
            )
            for i in range(size.users)
        ],
    )
    ctx.user_groups = {user.pk: ctx.groups[i % GROUPS].name for i, user in enumerate(ctx.users)}
    insert(
        User.groups.through,
        [
            User.groups.through(user_id=user.pk, group_id=ctx.groups[i % GROUPS].pk)
            for i, user in enumerate(ctx.users)
        ],
    )
    ctx.count("users", len(ctx.users))


def build_allocators(ctx: Context) -> None:
    """Allocators with every kind of condition and binding policy; the last is the
    default one unless the database has one already. Allocator n draws from pool n
    and falls back on the next one; every pool serves at least one allocator."""
    size, p = ctx.size, ctx.prefix
    has_default = Allocator.objects.filter(is_default=True).exists()
    policies = [
        BindingPolicy.USER,
        BindingPolicy.USER,
        BindingPolicy.SEAT,
        BindingPolicy.TERMINAL,
        BindingPolicy.FLOATING,
    ]
    ctx.allocators = []
    for i in range(size.allocators):
        is_default = not has_default and i == size.allocators - 1
        ctx.allocators.append(
            Allocator(
                name=f"{p}-rule-{i:03d}",
                priority=10 * (i + 1),
                enabled=i % 13 != 12 or is_default,
                is_default=is_default,
                terminal_tags=["floor-2"] if i % 7 == 3 and not is_default else [],
                ou_subtrees=[f"ou=site{i % 5},dc=example,dc=com"]
                if i % 11 == 4 and not is_default
                else [],
                binding_policy=policies[i % len(policies)],
            )
        )
    insert(Allocator, ctx.allocators)
    links: dict[tuple[int, int], AllocatorPool] = {}

    def link(allocator: Allocator, pool, order: int) -> None:
        key = (allocator.pk, pool.pk)
        links.setdefault(key, AllocatorPool(allocator=allocator, pool=pool, order=order))

    for i, allocator in enumerate(ctx.allocators):
        link(allocator, ctx.pools[i % size.pools], 0)
        link(allocator, ctx.pools[(i + 1) % size.pools], 1)
    for i, pool in enumerate(ctx.pools):
        link(ctx.allocators[i % size.allocators], pool, 2)
    insert(AllocatorPool, list(links.values()))
    ctx.allocator_pools = {}
    for link in sorted(links.values(), key=lambda link: link.order):
        ctx.allocator_pools.setdefault(link.allocator.pk, []).append(link.pool)
    ctx.allocator_groups = {}
    ctx.allocator_sites = {}
    group_links, site_links = [], []
    for i, allocator in enumerate(ctx.allocators):
        if allocator.is_default:
            continue
        group = ctx.groups[i % len(ctx.groups)]
        group_links.append(Allocator.groups.through(allocator=allocator, group=group))
        ctx.allocator_groups[allocator.pk] = {group.name}
        if i % 3 == 0:
            site = ctx.sites[i % len(ctx.sites)]
            site_links.append(Allocator.sites.through(allocator=allocator, site=site))
            ctx.allocator_sites[allocator.pk] = {site.name}
    insert(Allocator.groups.through, group_links)
    insert(Allocator.sites.through, site_links)
    ctx.count("allocators", len(ctx.allocators))
