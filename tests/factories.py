"""factory_boy factories for the domain, and `Desk`, a small world for connects."""

from dataclasses import dataclass

import factory
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from allocation.choices import BindingPolicy, TerminalStatus
from allocation.models import Allocator, AllocatorPool, Site, Terminal
from cloud.models import Region, SimHost, SimulatedRegion
from pools.models import VM, FeatureClass, SchedulingPolicy, VMPool
from pools.services import pool_refill, vms_poll_boots

PASSWORD = "correct horse battery"


class RegionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Region
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"region-{n}")

    @factory.post_generation
    def simulation(self, create, extracted, **kwargs):
        """A simulated region with instant boots and no faults unless asked."""
        if create:
            options = {"boot_seconds_min": 0, "boot_seconds_max": 0, **kwargs}
            options["boot_seconds_max"] = max(
                options["boot_seconds_max"], options["boot_seconds_min"]
            )
            SimulatedRegion.objects.create(region=self, **options)

    @factory.post_generation
    def hosts(self, create, extracted, **kwargs):
        if create:
            for index in range(extracted if extracted is not None else 2):
                SimHostFactory(region=self, name=f"{self.name}-cmp-{index}")


class SimHostFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SimHost

    region = factory.SubFactory(RegionFactory)
    name = factory.Sequence(lambda n: f"cmp-{n}")
    address = factory.Sequence(lambda n: f"192.0.2.{n % 250 + 1}")
    vcpus = 32
    memory_mb = 131072


class FeatureClassFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FeatureClass
        django_get_or_create = ("name",)

    name = "agent"
    label = "Agent"
    weight = 2.0


class VMPoolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VMPool

    name = factory.Sequence(lambda n: f"pool-{n}")
    region = factory.SubFactory(RegionFactory)
    feature_class = factory.SubFactory(FeatureClassFactory)
    flavor = "desk.medium"
    vcpus = 2
    memory_mb = 4096
    image = "win10"
    target_ready = 3
    max_concurrent_boots = 5
    max_size = 500


class VMFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VM

    pool = factory.SubFactory(VMPoolFactory)
    name = factory.Sequence(lambda n: f"vm-{n}")


class SiteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Site
        django_get_or_create = ("name",)

    name = "shanghai"


class TerminalFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Terminal

    serial = factory.Sequence(lambda n: f"TC-{n:04d}")
    site = factory.SubFactory(SiteFactory)
    seat = factory.Sequence(lambda n: f"SEAT-{n:04d}")
    status = TerminalStatus.ENROLLED


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(PASSWORD)

    @factory.post_generation
    def groups(self, create, extracted, **kwargs):
        if create and extracted:
            for name in extracted:
                self.groups.add(Group.objects.get_or_create(name=name)[0])

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        """`role="operator"` puts the user in the first group granting that role."""
        if create and extracted:
            name = settings.PORTAL_ROLE_GROUPS[extracted][0]
            self.groups.add(Group.objects.get_or_create(name=name)[0])


class AllocatorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Allocator
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"allocator-{n}")
    priority = 100
    binding_policy = BindingPolicy.USER

    @factory.post_generation
    def pools(self, create, extracted, **kwargs):
        if create and extracted:
            for order, pool in enumerate(extracted):
                AllocatorPool.objects.create(allocator=self, pool=pool, order=order)


def fill_pool(pool: VMPool, ready: int) -> None:
    """Boot `ready` VMs in the pool (the test regions boot instantly), with the
    cloud-wide boot caps out of the way."""
    SchedulingPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "max_concurrent_boots": 100_000,
            "max_boots_per_minute": 100_000,
            "host_max_concurrent_boots": 100_000,
        },
    )
    VMPool.objects.filter(pk=pool.pk).update(target_ready=ready, max_concurrent_boots=max(ready, 1))
    pool_refill(pool_id=pool.pk)
    vms_poll_boots()
    filled = VM.objects.filter(pool=pool, state="ready").count()
    pool.refresh_from_db()
    assert filled == ready, f"pool {pool} holds {filled} ready VMs, not {ready}: {pool.last_error}"


@dataclass
class Desk:
    pool: VMPool
    allocator: Allocator
    terminal: Terminal
    user: object

    @classmethod
    def build(cls, ready: int = 3, policy: str = BindingPolicy.USER) -> "Desk":
        pool = VMPoolFactory()
        fill_pool(pool, ready)
        allocator = AllocatorFactory(is_default=True, pools=[pool], binding_policy=policy)
        return cls(pool=pool, allocator=allocator, terminal=TerminalFactory(), user=UserFactory())

    def connect_body(self, **overrides) -> dict:
        body = {
            "username": self.user.username,
            "password": PASSWORD,
            "terminal": self.terminal.serial,
        }
        body.update(overrides)
        return body
