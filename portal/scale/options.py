"""The command-line options that size a world, shared by `seed_scale` and
`bench_scale`, and the seeding both of them do."""

import time
from collections.abc import Callable
from dataclasses import fields

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection

from allocation.models import Allocator, Terminal
from cloud.models import Region
from pools.models import VM, VMPool

from .sizes import SCALE_WORLD, WorldSize
from .world import build_world

# The password every user of a seeded world shares (the benchmark logs them in).
DEFAULT_PASSWORD = "deskops-scale"  # noqa: S105 - a test world's, printed in the README
DEFAULT_PREFIX = "scale"
# Options named apart from their count: `--connects` is the benchmark's logins.
# (Each count's value is kept as `world_<count>`, clear of the commands' own.)
OPTION_NAMES = {"connects": "connect-records"}


def add_size_arguments(parser, defaults: WorldSize = SCALE_WORLD) -> None:
    """One option per count of the world (`--audit-events` sets `audit_events`);
    the counts that depend on others follow them (`WorldSize.fitted`)."""
    group = parser.add_argument_group("world size")
    for field in fields(WorldSize):
        option = OPTION_NAMES.get(field.name, field.name.replace("_", "-"))
        group.add_argument(
            f"--{option}",
            dest=f"world_{field.name}",
            type=int,
            default=getattr(defaults, field.name),
            metavar="N",
        )


def size_from_options(options: dict) -> WorldSize:
    return WorldSize(**{f.name: options[f"world_{f.name}"] for f in fields(WorldSize)}).fitted()


def database_holds_data() -> bool:
    """Whether the installation has anything of its own yet (what migrations
    create, such as the scheduling policy or the feature classes, does not count)."""
    models = (Region, VMPool, VM, Terminal, Allocator, get_user_model())
    return any(model.objects.exists() for model in models)


def seed(
    size: WorldSize,
    *,
    prefix: str,
    password: str,
    seed_value: int = 1,
    on_step: Callable[[str, float], None] | None = None,
) -> tuple[dict[str, int], int, float]:
    """Build the world and return the counts of its main objects, the rows written
    in all and the seconds it took. The
    password is hashed once with the configured hasher and that encoded hash is
    given to every user: the same password, and each login still pays the real
    hasher's cost. On PostgreSQL the tables are analysed afterwards, as
    autovacuum would soon do in service, so the planner knows their sizes."""
    before = _rows()
    started = time.monotonic()
    counts = build_world(
        size, prefix=prefix, seed=seed_value, password=make_password(password), on_step=on_step
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    seconds = time.monotonic() - started
    return counts, _rows() - before, seconds


def _rows() -> int:
    """Rows in every table of the installed apps."""
    return sum(model._base_manager.count() for model in apps.get_models())
