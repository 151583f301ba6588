"""Simulate the hypervisor's Credit scheduler and the paper's BOOST variant on a
host mix and print both, class by class, with the change BOOST makes."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string

from cloud.models import Host
from pools.models import FeatureClass
from simulation.credit import ACCOUNTING_MODES, PAPER, Comparison, compare
from simulation.credit_chart import comparison_chart
from simulation.credit_hosts import class_params, host_mix
from simulation.workloads import DEFAULT_CLASSES, MixError, default_mix, parse_mix


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _change(value: float | None) -> str:
    return "" if value is None else f"{value:+.0%}"


def comparison_table(comparison: Comparison) -> list[str]:
    """The comparison as text lines: one row per class, then the host's totals."""
    header = (
        f"{'class':<18}{'VMs':>4}{'vCPU':>5}  {'latency mean ms':>22}  {'latency p95 ms':>22}  "
        f"{'response p95 ms':>22}  {'CPU ms/s':>18}  {'bursts/s':>14}"
    )
    lines = [header, "-" * len(header)]

    def pair(change, attribute, fmt=_ms):
        before = getattr(change.credit, attribute)
        after = getattr(change.boost, attribute)
        return f"{fmt(before)} -> {fmt(after)} {_change(change.change(attribute)):>5}"

    for change in comparison.classes():
        lines.append(
            f"{change.label[:17]:<18}{change.credit.vms:>4}{change.credit.vcpus:>5}  "
            f"{pair(change, 'latency_mean_ms'):>22}  {pair(change, 'latency_p95_ms'):>22}  "
            f"{pair(change, 'response_p95_ms'):>22}  "
            f"{pair(change, 'cpu_ms_per_s', lambda v: f'{v:.0f}'):>18}  "
            f"{pair(change, 'bursts_per_s', lambda v: f'{v:.1f}'):>14}"
        )
    credit, boost = comparison.credit, comparison.boost
    lines.append("-" * len(header))
    lines.append(
        f"host: {credit.pcpus} CPUs, {credit.vcpus} vCPUs, {credit.seconds:g} s, seed "
        f"{comparison.seed}, refill {comparison.accounting}"
        f"{', boost on wake-up too' if comparison.boost_wakeups else ''}"
    )
    lines.append(
        f"busy {credit.utilisation:.1%} -> {boost.utilisation:.1%}; total "
        f"{credit.cpu_ms_per_s:.0f} -> {boost.cpu_ms_per_s:.0f} CPU ms/s "
        f"({_change(comparison.throughput_change) or '+0%'}); bursts "
        f"{credit.bursts_per_s:.1f} -> {boost.bursts_per_s:.1f}/s; refills "
        f"{credit.refills} -> {boost.refills}; steals {credit.steals} -> {boost.steals}"
    )
    return lines


def chart_svg(comparison: Comparison, title: str) -> str:
    """The comparison's chart as a standalone SVG document."""
    chart = comparison_chart(comparison, title)
    return render_to_string("simulation/credit_chart.svg", {"chart": chart, "standalone": True})


class Command(BaseCommand):
    help = (
        "Simulate the Credit CPU scheduler and the paper's BOOST variant on a host mix "
        "and print per-class scheduling latency and throughput for both."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", help="simulate this host's booted VMs (name or id)")
        parser.add_argument(
            "--mix",
            help="class:vcpus:workload:count items, comma-separated "
            "(workloads: interactive, mixed, batch); default: a busy 8-core host",
        )
        parser.add_argument("--seconds", type=float, default=60.0, help="host time simulated")
        parser.add_argument("--pcpus", type=int, help="physical CPUs (default 8, or the host's)")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--accounting", choices=ACCOUNTING_MODES, default=PAPER)
        parser.add_argument(
            "--boost-wakeups",
            action="store_true",
            help="also put a waking vCPU with factor left into BOOST (beyond the paper)",
        )
        parser.add_argument("--svg", help="write the chart to this SVG file")

    def handle(self, *args, **options):
        seconds = options["seconds"]
        if not 0.1 <= seconds <= 3600:
            raise CommandError("--seconds must be between 0.1 and 3600")
        if options["host"] and options["mix"]:
            raise CommandError("give --host or --mix, not both")
        pcpus = options["pcpus"]
        if pcpus is not None and not 1 <= pcpus <= 1024:
            raise CommandError("--pcpus must be between 1 and 1024")
        if options["host"]:
            host = self._host(options["host"])
            mix = host_mix(host)
            if not mix:
                raise CommandError(f"host {host.name} has no booted VMs to simulate")
            pcpus = pcpus or host.vcpus
            if not pcpus:
                raise CommandError(f"host {host.name} reports no CPUs; give --pcpus")
            title = f"Host {host.name}"
        elif options["mix"]:
            classes = dict(DEFAULT_CLASSES)
            # Classes in the database override the built-in ones of the same name.
            classes.update({fc.name: class_params(fc) for fc in FeatureClass.objects.all()})
            try:
                mix = parse_mix(options["mix"], classes)
            except MixError as error:
                raise CommandError(str(error)) from None
            title = "Custom mix"
        else:
            mix = default_mix()
            title = "Default mix"
        pcpus = pcpus or 8
        comparison = compare(
            mix,
            pcpus=pcpus,
            seconds=seconds,
            seed=options["seed"],
            accounting=options["accounting"],
            boost_wakeups=options["boost_wakeups"],
        )
        self.stdout.write(f"{title}: Credit -> BOOST")
        for line in comparison_table(comparison):
            self.stdout.write(line)
        if options["svg"]:
            path = Path(options["svg"])
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(chart_svg(comparison, f"{title}: Credit and BOOST, simulated"))
            except OSError as error:
                raise CommandError(f"cannot write {path}: {error}") from None
            self.stdout.write(f"chart written to {path}")

    def _host(self, value: str) -> Host:
        hosts = Host.objects.filter(name=value)
        if value.isdigit():
            hosts = hosts | Host.objects.filter(pk=int(value))
        found = list(hosts[:2])
        if not found:
            raise CommandError(f"no host {value!r}")
        if len(found) > 1:
            raise CommandError(f"{value!r} names several hosts (one per region); give its id")
        return found[0]
