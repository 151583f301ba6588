"""The login storm's world, built in bulk: a simulated region with hosts, one pool
of booted ready VMs (their simulated servers already running), one enrolled
terminal per thin client, and the users as they stand the morning after their
last login (Django account, mirrored group, remembered DN), plus the same users
in the directory with their passwords.

Everything is written with `bulk_create`, so thousands of VMs and users take
seconds rather than the minutes the services would need one by one."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, AllocatorPool, DirectoryProfile, Site, Terminal
from cloud.choices import ServerStatus
from cloud.models import Region, SimHost, SimServer, SimulatedRegion
from cloud.services import region_sync_hosts
from pools.choices import VMState
from pools.models import VM, FeatureClass, VMPool

from .slapd import Entry, entry, organizational_unit

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
GROUP = "agents"
# Desktops a host of the simulated region carries at most (a large compute node).
VMS_PER_HOST = 100


@dataclass(frozen=True)
class StormUser:
    """One simulated thin client: a directory account at its own terminal."""

    username: str
    password: str
    terminal: str

    @property
    def dn(self) -> str:
        return f"uid={self.username},{PEOPLE}"

    def body(self) -> dict:
        return {"username": self.username, "password": self.password, "terminal": self.terminal}


def storm_users(*, count: int, prefix: str = "storm") -> list[StormUser]:
    """`count` users with passwords of their own, fresh for each run."""
    secret = secrets.token_hex(6)
    return [
        StormUser(
            username=f"{prefix}{index:05d}",
            password=f"{secret}-{index}",
            terminal=f"{prefix.upper()}-TC-{index:05d}",
        )
        for index in range(count)
    ]


def directory_entries(users: list[StormUser]) -> list[Entry]:
    """The directory tree for the users: the people, and one group holding them
    all (after them, as groups come after their members)."""
    entries = [
        (BASE, entry(objectClass=["dcObject", "organization"], dc="example", o="Example")),
        organizational_unit(PEOPLE),
        organizational_unit(GROUPS),
    ]
    for user in users:
        entries.append(
            (
                user.dn,
                entry(
                    objectClass="inetOrgPerson",
                    uid=user.username,
                    cn=user.username,
                    sn=user.username,
                    givenName="Storm",
                    mail=f"{user.username}@example.com",
                    userPassword=user.password,
                ),
            )
        )
    entries.append(
        (
            f"cn={GROUP},{GROUPS}",
            entry(objectClass="groupOfNames", cn=GROUP, member=[u.dn for u in users]),
        )
    )
    return entries


@dataclass(frozen=True)
class StormWorld:
    pool_id: int
    ready_vms: int


@transaction.atomic
def storm_world_seed(*, users: list[StormUser], ready_vms: int, name: str = "storm") -> StormWorld:
    """Write the world for `users` with `ready_vms` ready desktops in one pool,
    served by an allocator that matches the directory group every user is in."""
    now = timezone.now()
    region = Region.objects.create(name=name, label="Login storm")
    SimulatedRegion.objects.create(region=region, boot_seconds_min=0, boot_seconds_max=0)
    host_count = max(2, -(-ready_vms // VMS_PER_HOST))
    hosts = SimHost.objects.bulk_create(
        SimHost(
            region=region,
            name=f"{name}-cmp-{index:03d}",
            address=f"198.18.{index // 250}.{index % 250 + 1}",
            vcpus=VMS_PER_HOST * 2,
            memory_mb=VMS_PER_HOST * 4096,
        )
        for index in range(host_count)
    )
    region_sync_hosts(region=region)

    feature, _ = FeatureClass.objects.get_or_create(name="agent", defaults={"label": "Agent"})
    pool = VMPool.objects.create(
        name=name, region=region, feature_class=feature, flavor="desk.medium",
        vcpus=2, memory_mb=4096, image="win10", target_ready=ready_vms,
        max_size=2 * ready_vms, max_concurrent_boots=10, pause_after_errors=0,
    )  # fmt: skip
    servers = SimServer.objects.bulk_create(
        SimServer(
            region=region,
            host=hosts[index % host_count],
            name=f"{name}-vm-{index:05d}",
            flavor=pool.flavor,
            vcpus=pool.vcpus,
            memory_mb=pool.memory_mb,
            image=pool.image,
            status=ServerStatus.ACTIVE,
            task_state="",
            ready_at=now,
            ip_address=f"10.{200 + index // 65000}.{index // 250 % 250}.{index % 250 + 1}",
            spice_port=5900 + 2 * (index // host_count),
        )
        for index in range(ready_vms)
    )
    VM.objects.bulk_create(
        VM(
            pool=pool,
            name=server.name,
            server_id=str(server.id),
            state=VMState.READY,
            host_name=server.host.name,
            ip_address=server.ip_address,
            boot_started_at=now - timedelta(minutes=5),
            # Distinct idle times, so the claim order is well defined.
            ready_at=now - timedelta(minutes=5) + timedelta(milliseconds=index),
            cloud_status=ServerStatus.ACTIVE,
        )
        for index, server in enumerate(servers)
    )

    site = Site.objects.create(name=name, label="Login storm")
    Terminal.objects.bulk_create(
        Terminal(
            serial=user.terminal,
            site=site,
            seat=f"SEAT-{index:05d}",
            status=TerminalStatus.ENROLLED,
        )
        for index, user in enumerate(users)
    )
    User = get_user_model()
    # Directory users have no usable local password (django-auth-ldap sets it so).
    unusable = make_password(None)
    accounts = User.objects.bulk_create(
        User(username=user.username, password=unusable, first_name="Storm", last_name=user.username,
             email=f"{user.username}@example.com")
        for user in users
    )  # fmt: skip
    group, _ = Group.objects.get_or_create(name=GROUP)
    User.groups.through.objects.bulk_create(
        User.groups.through(user_id=account.pk, group_id=group.pk) for account in accounts
    )
    DirectoryProfile.objects.bulk_create(
        DirectoryProfile(user=account, dn=user.dn)
        for account, user in zip(accounts, users, strict=True)
    )
    allocator = Allocator.objects.create(
        name=f"{name} agents", priority=10, binding_policy=BindingPolicy.USER
    )
    allocator.groups.add(group)
    AllocatorPool.objects.create(allocator=allocator, pool=pool)
    return StormWorld(pool_id=pool.pk, ready_vms=ready_vms)
