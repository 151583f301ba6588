"""Seed a large installation for scale testing: by default 100,000 terminals,
50,000 VMs (30,000 in use, with their bindings and sessions), 500 hosts in six
regions, 80,000 users, 200,000 audit events and 40,000 connect records, written
with bulk inserts in one transaction (`portal.scale`). Every user's password is
`--password`; every running VM has its server in the simulated cloud, so thin
clients of the world really connect.

It refuses a database that already holds an installation (regions, pools, VMs,
terminals, allocators or users) unless `--append` is given, which adds the world
beside what is there under its own `--prefix` (a prefix already in use is
refused)."""

import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from cloud.models import Region
from portal.scale.options import (
    DEFAULT_PASSWORD,
    DEFAULT_PREFIX,
    add_size_arguments,
    database_holds_data,
    seed,
    size_from_options,
)


class Command(BaseCommand):
    help = "Seed a large installation (100,000 terminals, 50,000 VMs by default) in bulk."

    def add_arguments(self, parser):
        add_size_arguments(parser)
        parser.add_argument(
            "--prefix", default=DEFAULT_PREFIX, help="Names of the world's objects start with it."
        )
        parser.add_argument("--password", default=DEFAULT_PASSWORD, help="Every user's password.")
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed (same seed, same world)."
        )
        parser.add_argument(
            "--append",
            action="store_true",
            help="Add the world to a database that already holds data (under a new --prefix).",
        )

    def handle(self, *args, **options):
        size = size_from_options(options)
        problems = size.problems()
        if problems:
            raise CommandError("; ".join(problems))
        prefix = options["prefix"]
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,19}", prefix or ""):
            raise CommandError("--prefix must be 1 to 20 lower-case letters, digits and dashes.")
        if Region.objects.filter(name=f"{prefix}-r000").exists():
            raise CommandError(f"This database already holds a world with the prefix “{prefix}”.")
        if not options["append"] and database_holds_data():
            raise CommandError(
                "This database already holds data: seed an empty one, or pass --append "
                "to add the world beside it."
            )
        self.stdout.write(
            f"seeding a world “{prefix}” on {connection.vendor}: {size.terminals:,} terminals, "
            f"{size.vms:,} VMs, {size.hosts:,} hosts, {size.regions} regions"
        )

        def step(name: str, seconds: float) -> None:
            self.stdout.write(f"  {name:<28} {seconds:7.1f} s")

        counts, rows, seconds = seed(
            size,
            prefix=prefix,
            password=options["password"],
            seed_value=options["seed"],
            on_step=step,
        )
        self.stdout.write(
            f"seeded {rows:,} rows in {seconds:.1f} s ({rows / max(seconds, 1e-3):,.0f} rows/s), "
            "among them:"
        )
        for name, count in counts.items():
            self.stdout.write(f"  {name:<28} {count:>9,}")
        self.stdout.write(
            f"users {prefix}-user0 … {prefix}-user{size.users - 1}, password "
            f"“{options['password']}”; terminals TC-{prefix}-00000 …"
        )
