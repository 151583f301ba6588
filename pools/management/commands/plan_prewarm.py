"""Print the boot-storm plan of every shift, region by region; with --apply, also
write it into the pools' calendars (what the daily job does)."""

from django.core.management.base import BaseCommand

from pools.prewarm import DAY_NAMES
from pools.selectors import prewarm_plan
from pools.services import prewarm_apply


class Command(BaseCommand):
    help = "Show when each shift's pre-warming must start; --apply writes the calendar windows."

    def add_arguments(self, parser):
        parser.add_argument(
            "--apply",
            action="store_true",
            help="Write the plan as calendar windows of the pools (audited).",
        )

    def handle(self, *args, apply: bool, **options):
        plan = prewarm_plan()
        if not plan.shifts:
            self.stdout.write("No shifts to plan.")
            return
        for region in sorted(plan.regions.values(), key=lambda r: r.name):
            if region.hosts is None:
                hosts = "no host inventory"
            else:
                hosts = (
                    f"{len(region.hosts)} up hosts, boot caps summing to "
                    f"{sum(h.boot_cap for h in region.hosts)}"
                )
            cap = region.max_concurrent_boots if region.max_concurrent_boots is not None else "none"
            self.stdout.write(f"Region {region.name} (region cap {cap}; {hosts})")
            for planned in plan.for_region(region.region_id):
                shift = planned.shift
                days = ",".join(DAY_NAMES[d - 1] for d in shift.weekdays) or "every day"
                self.stdout.write(
                    f"  {planned.pool.name}/{shift.label}: {shift.seats} seats at "
                    f"{shift.starts_at:%H:%M} ({days}); boot {planned.pool.boot_seconds:.0f} s "
                    f"({planned.pool.boot_source}); bound by {planned.limited_by}; "
                    f"pre-warm from {planned.prewarm_label} "
                    f"(lead {planned.lead_seconds // 60} min): {planned.verdict}"
                )
                for problem in planned.problems:
                    self.stdout.write(f"    ! {problem}")
        if apply:
            result = prewarm_apply(actor="plan_prewarm")
            self.stdout.write(f"Applied: {result}")
