"""Seed the demo: a simulated cloud of two regions, pools of three feature classes,
allocators, demo users and enrolled terminals. Safe to run again: it creates what
is missing and leaves the rest alone."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, AllocatorPool, Site, Terminal
from cloud.models import Host, Region, SimHost, SimulatedRegion
from cloud.services import regions_sync_hosts
from maintenance.demo import seed_maintenance_demo
from pools.models import FeatureClass, VMPool
from pools.services import pools_refill_all, vms_poll_boots

DEMO_PASSWORD = "deskops-demo"
ADMIN_PASSWORD = "deskops-admin"

REGIONS = [
    # name, label, host prefix, host count, subnet of host addresses
    ("east", "East region", "east-cmp", 6, "192.0.2"),
    ("west", "West region", "west-cmp", 5, "198.51.100"),
]
FEATURE_CLASSES = [
    # name, label, weight, urgency, CPU cap %, boost factor
    # (the paper: VIP agent > agent > supervisor)
    ("vip-agent", "VIP agent", 3.0, 3, 0, 3),
    ("agent", "Agent", 2.0, 2, 0, 1),
    ("supervisor", "Supervisor", 1.0, 1, 50, 0),
]
POOLS = [
    # name, label, region, class, flavor, vcpus, memory MB, target ready, boot cap
    ("agents-east", "Agents (east)", "east", "agent", "desk.medium", 2, 4096, 8, 4),
    ("vip-east", "VIP agents (east)", "east", "vip-agent", "desk.large", 4, 8192, 3, 2),
    ("agents-west", "Agents (west)", "west", "agent", "desk.medium", 2, 4096, 5, 3),
    ("supervisors-west", "Supervisors (west)", "west", "supervisor", "desk.medium", 2, 4096, 3, 2),
]
SITES = [("shanghai", "Shanghai call center", "SH"), ("hefei", "Hefei call center", "HF")]
USERS = [
    # username, group
    ("alice", "agents"),
    ("bob", "agents"),
    ("carol", "agents"),
    ("dave", "agents"),
    ("erin", "vip-agents"),
    ("frank", "vip-agents"),
    ("grace", "supervisors"),
    ("heidi", "supervisors"),
]
# The portal's staff, one per role (portal/roles.py), in the default role groups.
STAFF = [
    # username, role
    ("vera", "viewer"),
    ("hugo", "helpdesk"),
    ("olga", "operator"),
]
ALLOCATORS = [
    # name, priority, groups, sites, binding, pools in order, default
    ("VIP agents", 10, ["vip-agents"], [], BindingPolicy.USER, ["vip-east", "agents-east"], False),
    ("Supervisors", 20, ["supervisors"], [], BindingPolicy.USER, ["supervisors-west"], False),
    (
        "Hefei seats",
        30,
        ["agents"],
        ["hefei"],
        BindingPolicy.SEAT,
        ["agents-west", "agents-east"],
        False,
    ),
    ("Everyone else", 1000, [], [], BindingPolicy.FLOATING, ["agents-east", "agents-west"], True),
]

# The synthetic login probe's account and terminal (scripts/demo.sh hands them to
# the probe). Its allocator comes first and matches only this account at this
# terminal; it binds by user, so the probe's login every minute gets the same
# desktop back instead of claiming a ready VM and recycling it each time: the
# probe holds one VM of agents-west for good (agents-east, where the README's
# example login lands, is only its fallback, so the demo's figures there stay put).
PROBE_USERNAME = "probe"
PROBE_PASSWORD = "deskops-probe"
PROBE_GROUP = "probes"
PROBE_TERMINAL = "TC-PROBE-01"
PROBE_TAG = "probe"
PROBE_ALLOCATOR = ("Login probe", 5, ["agents-west", "agents-east"])


class Command(BaseCommand):
    help = "Create the demo cloud, pools, allocators, users and terminals."

    def add_arguments(self, parser):
        parser.add_argument(
            "--prewarm",
            action="store_true",
            help="Fill the pools at once, as if the cloud had been running overnight.",
        )

    def handle(self, *args, prewarm: bool = False, **options):
        with transaction.atomic():
            self._seed()
        regions_sync_hosts()
        # Two racks per region: placement serves the better rack first.
        for host in Host.objects.filter(placement_group=""):
            rack = "a" if int(host.name.rsplit("-", 1)[1]) <= 3 else "b"
            Host.objects.filter(pk=host.pk).update(
                placement_group=f"{host.region.name}-rack-{rack}"
            )
        if prewarm:
            self._prewarm()
        regions_sync_hosts()
        seed_maintenance_demo()
        self.stdout.write(self.style.SUCCESS("Demo data is in place."))

    def _seed(self):
        regions = {}
        for name, label, prefix, count, subnet in REGIONS:
            region, _ = Region.objects.get_or_create(name=name, defaults={"label": label})
            SimulatedRegion.objects.get_or_create(region=region)
            for index in range(1, count + 1):
                SimHost.objects.get_or_create(
                    region=region,
                    name=f"{prefix}-{index:02d}",
                    # Hosts answer at different speeds, which placement weighs.
                    defaults={"address": f"{subnet}.{10 + index}", "response_ms": 10.0 * index},
                )
            regions[name] = region

        classes = {}
        for name, label, weight, urgency, cap, boost in FEATURE_CLASSES:
            classes[name], _ = FeatureClass.objects.get_or_create(
                name=name,
                defaults={
                    "label": label,
                    "weight": weight,
                    "urgency": urgency,
                    "cpu_cap_percent": cap,
                    "boost_factor": boost,
                },
            )

        pools = {}
        for name, label, region, cls, flavor, vcpus, memory, target, cap in POOLS:
            pools[name], _ = VMPool.objects.get_or_create(
                name=name,
                defaults={
                    "label": label,
                    "region": regions[region],
                    "feature_class": classes[cls],
                    "flavor": flavor,
                    "vcpus": vcpus,
                    "memory_mb": memory,
                    "image": "win10-callcenter-2026.11",
                    "network": "desktops",
                    "target_ready": target,
                    "min_ready": max(1, target // 3),
                    "max_concurrent_boots": cap,
                    "max_size": 60,
                },
            )

        sites = {}
        for name, label, code in SITES:
            sites[name], _ = Site.objects.get_or_create(name=name, defaults={"label": label})
            for seat in range(1, 6):
                Terminal.objects.get_or_create(
                    serial=f"TC-{code}-{seat:03d}",
                    defaults={
                        "site": sites[name],
                        "seat": f"{code}-A{seat:02d}",
                        "mac_address": f"52:54:00:{len(code):02x}:{ord(code[0]):02x}:{seat:02x}",
                        "tags": ["floor-1"],
                        "status": TerminalStatus.ENROLLED,
                    },
                )

        User = get_user_model()
        groups = {}
        for username, group in USERS:
            groups[group], _ = Group.objects.get_or_create(name=group)
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            user.groups.add(groups[group])

        for username, role in STAFF:
            group, _ = Group.objects.get_or_create(name=settings.PORTAL_ROLE_GROUPS[role][0])
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            user.groups.add(group)

        admin, created = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            admin.set_password(ADMIN_PASSWORD)
            admin.save()

        for name, priority, group_names, site_names, policy, pool_names, default in ALLOCATORS:
            allocator, created = Allocator.objects.get_or_create(
                name=name,
                defaults={"priority": priority, "binding_policy": policy, "is_default": default},
            )
            if created:
                allocator.groups.set([groups[g] for g in group_names])
                allocator.sites.set([sites[s] for s in site_names])
                for order, pool_name in enumerate(pool_names):
                    AllocatorPool.objects.create(
                        allocator=allocator, pool=pools[pool_name], order=order
                    )

        self._seed_probe(sites=sites, pools=pools)

    def _seed_probe(self, *, sites, pools):
        """The login probe's account, its enrolled terminal and its allocator."""
        Terminal.objects.get_or_create(
            serial=PROBE_TERMINAL,
            defaults={
                "site": sites["shanghai"],
                "seat": "SH-PROBE",
                "mac_address": "52:54:00:70:72:01",
                "tags": [PROBE_TAG],
                "status": TerminalStatus.ENROLLED,
            },
        )
        group, _ = Group.objects.get_or_create(name=PROBE_GROUP)
        user, created = get_user_model().objects.get_or_create(username=PROBE_USERNAME)
        if created:
            user.set_password(PROBE_PASSWORD)
            user.save()
        user.groups.add(group)
        name, priority, pool_names = PROBE_ALLOCATOR
        allocator, created = Allocator.objects.get_or_create(
            name=name,
            defaults={
                "priority": priority,
                "binding_policy": BindingPolicy.USER,
                "terminal_tags": [PROBE_TAG],
            },
        )
        if created:
            allocator.groups.set([group])
            for order, pool_name in enumerate(pool_names):
                AllocatorPool.objects.create(
                    allocator=allocator, pool=pools[pool_name], order=order
                )

    def _prewarm(self):
        """Boot every pool to its target with a zero boot time, then restore the
        regions' boot time ranges."""
        simulations = list(SimulatedRegion.objects.all())
        for simulation in simulations:
            SimulatedRegion.objects.filter(pk=simulation.pk).update(
                boot_seconds_min=0, boot_seconds_max=0
            )
        try:
            for _ in range(10):
                started = sum(pools_refill_all().values())
                vms_poll_boots()
                if not started:
                    break
        finally:
            for simulation in simulations:
                SimulatedRegion.objects.filter(pk=simulation.pk).update(
                    boot_seconds_min=simulation.boot_seconds_min,
                    boot_seconds_max=simulation.boot_seconds_max,
                )
