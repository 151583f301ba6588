"""Generated worlds for the benchmarks and the scale tests: an installation of any
size (up to a hundred thousand terminals and fifty thousand VMs) written straight
into the database with bulk inserts, deterministic (a seeded random generator),
with names a benchmark can aim at: users `<prefix>-user<n>`, VMs
`<pool>-<n>`, terminals `TC-<prefix>-<n>`. Two worlds with different prefixes fit
in one database.

One module per part of the installation (`cloud`, `pools`, `people`, `bindings`,
`monitoring`, `maintenance`, `audit`), sharing `context`; `world` runs them in
order; `sizes` holds the presets and `options` the command-line options that set
them. The scale benchmark (`manage.py bench_scale`) measures with `connects` and
`reads`, against `budgets`, through `timing`; `html` reads pages for the page
benchmark."""

from .html import table_rows
from .sizes import SCALE_WORLD, SMALL_WORLD, TINY_WORLD, WorldSize
from .world import build_world

__all__ = ["SCALE_WORLD", "SMALL_WORLD", "TINY_WORLD", "WorldSize", "build_world", "table_rows"]
