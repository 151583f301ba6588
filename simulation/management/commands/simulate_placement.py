"""Replay a simulated working day under each placement policy (dynamic priority,
round-robin, Nova weigher) and print the comparison; --svg writes the chart,
--save stores the run for the portal's placement page."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from simulation.replay import compare, format_table
from simulation.replay_chart import placement_svg
from simulation.replay_services import placement_run_record, replay_config


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


class Command(BaseCommand):
    help = "Compare placement policies over a simulated working day."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=1, help="Seed of the day's events.")
        parser.add_argument("--hosts", type=_positive, default=40)
        parser.add_argument("--seats", type=_positive, default=3000)
        parser.add_argument(
            "--host-boot-cap",
            type=_positive,
            default=None,
            help="Boots at once per host (default: the scheduling policy's).",
        )
        parser.add_argument(
            "--no-failure", action="store_true", help="Replay the day without the host failure."
        )
        parser.add_argument("--svg", type=Path, help="Write the chart to this SVG file.")
        parser.add_argument(
            "--save", action="store_true", help="Store the run for the portal page (audited)."
        )

    def handle(self, *args, seed, hosts, seats, host_boot_cap, no_failure, svg, save, **options):
        config = replay_config(
            seed=seed,
            hosts=hosts,
            seats=seats,
            host_boot_cap=host_boot_cap,
            host_failure=not no_failure,
        )
        report = compare(config, on_policy=lambda key: self.stderr.write(f"replaying {key}…"))
        region = report["region"]
        groups = ", ".join(f"{n} {g}" for g, n in region["groups"].items())
        failure = (
            f"{region['failed_host']} fails at {region['failed_minute'] // 60:02d}:"
            f"{region['failed_minute'] % 60:02d}"
            if region["failed_host"]
            else "no host failure"
        )
        self.stdout.write(
            f"seed {config.seed}: {region['hosts']} hosts ({groups}), {region['vcpus']} cores, "
            f"{region['memory_gb']} GB; {region['users']} users, {region['swaps']} swaps; "
            f"{failure}; {config.host_boot_cap} boots at once per host"
        )
        self.stdout.write(format_table(report))
        self.stdout.write(f"replayed in {report['seconds']} s")
        if svg:
            try:
                svg.write_text(placement_svg(report) + "\n")
            except OSError as exc:
                raise CommandError(f"cannot write {svg}: {exc}") from exc
            self.stdout.write(f"chart written to {svg}")
        if save:
            run = placement_run_record(report=report, actor="simulate_placement")
            self.stdout.write(f"saved as run #{run.pk}")
