"""Monitoring history of a generated world: host-failure incidents with their
timelines, alerts (a few still open), thin-client connect records for the
dashboard and the reports, and login-probe results."""

from datetime import timedelta

from monitoring.choices import (
    AlertKind,
    AlertSeverity,
    AlertStatus,
    IncidentKind,
    IncidentStatus,
)
from monitoring.models import Alert, ConnectRecord, Incident, IncidentEvent, ProbeResult

from .context import Context, insert, insert_stream

INCIDENT_TIMELINE = [
    "Host stopped answering",
    "Host taken out of placement",
    "VMs marked lost",
    "Users moved to new desktops",
]


def build_incidents_and_alerts(ctx: Context) -> None:
    size = ctx.size
    ctx.incidents = []
    for i in range(size.incidents):
        host = ctx.hosts[i % size.hosts]
        opened = ctx.ago()
        if i < size.unclosed_incidents:
            # One open incident per host: past the hosts, the rest have recovered.
            status = (
                IncidentStatus.OPEN if i % 3 == 0 and i < size.hosts else IncidentStatus.RECOVERED
            )
        else:
            status = IncidentStatus.CLOSED
        recovered = opened + timedelta(seconds=ctx.rng.uniform(60, 400))
        closed = status == IncidentStatus.CLOSED
        ctx.incidents.append(
            Incident(
                kind=IncidentKind.HOST_FAILURE,
                title=f"Host {host.name} failed",
                status=status,
                region=host.region,
                host=host,
                opened_at=opened,
                recovered_at=None if status == IncidentStatus.OPEN else recovered,
                closed_at=recovered + timedelta(hours=2) if closed else None,
                closed_by="ops-anna" if closed else "",
                vms_affected=ctx.rng.randint(5, 60),
                users_affected=ctx.rng.randint(0, 40),
            )
        )
    insert(Incident, ctx.incidents)
    insert(
        IncidentEvent,
        [
            IncidentEvent(
                incident=incident,
                at=incident.opened_at + timedelta(seconds=20 * step),
                message=message,
                data={"step": step},
            )
            for incident in ctx.incidents
            for step, message in enumerate(INCIDENT_TIMELINE)
        ],
    )
    kinds = list(AlertKind)
    ctx.alerts = []
    for i in range(size.alerts):
        kind = kinds[i % len(kinds)]
        opened = ctx.ago()
        if i < size.unclosed_alerts:
            status = AlertStatus.ACKNOWLEDGED if i % 4 == 3 else AlertStatus.OPEN
        else:
            status = AlertStatus.CLOSED
        closed = status == AlertStatus.CLOSED
        acknowledged = status == AlertStatus.ACKNOWLEDGED or (closed and i % 2 == 0)
        incident = ctx.incidents[i % len(ctx.incidents)] if ctx.incidents else None
        ctx.alerts.append(
            Alert(
                kind=kind,
                key=f"{kind.value}:{ctx.prefix}-{i:05d}",
                severity=AlertSeverity.CRITICAL if i % 5 == 0 else AlertSeverity.WARNING,
                status=status,
                message=f"{kind.label}: {ctx.prefix} object {i}",
                opened_at=opened,
                last_seen_at=opened + timedelta(minutes=15),
                cleared_at=opened + timedelta(minutes=20) if closed else None,
                acknowledged_at=opened + timedelta(minutes=5) if acknowledged else None,
                acknowledged_by="ops-marc" if acknowledged else "",
                closed_at=opened + timedelta(minutes=30) if closed else None,
                closed_by="ops-marc" if closed else "",
                notified_at=opened + timedelta(seconds=10),
                incident=incident if kind == AlertKind.HOST_DOWN else None,
            )
        )
    insert(Alert, ctx.alerts)
    ctx.count("incidents", len(ctx.incidents))
    ctx.count("alerts", len(ctx.alerts))


def _connect_records(ctx: Context):
    span = ctx.size.connect_minutes * 60
    # Oldest first, as connects are recorded.
    ages = sorted((ctx.rng.uniform(0, span) for _ in range(ctx.size.connects)), reverse=True)
    for i, age in enumerate(ages):
        outcome = ctx.rng.choices(["ready", "preparing", "cloud_unavailable"], [95, 4, 1])[0]
        terminal = ctx.terminals[i % len(ctx.terminals)]
        if outcome == "ready":
            source = ConnectRecord.Source.BINDING if i % 3 else ConnectRecord.Source.CLAIMED
        else:
            source = ConnectRecord.Source.NONE
        yield ConnectRecord(
            at=ctx.now - timedelta(seconds=age),
            outcome=outcome,
            source=source,
            latency_ms=ctx.rng.lognormvariate(3.5, 0.6),
            username=ctx.users[i % len(ctx.users)].username,
            terminal_serial=terminal.serial,
            site=terminal.site,
            pool=ctx.pools[i % len(ctx.pools)],
        )


def build_connects_and_probes(ctx: Context) -> None:
    written = (
        insert_stream(ConnectRecord, _connect_records(ctx)) if ctx.terminals and ctx.users else 0
    )
    insert(
        ProbeResult,
        [
            ProbeResult(
                at=ctx.now - timedelta(minutes=i),
                ok=i % 97 != 5,
                status_code=200 if i % 97 != 5 else 503,
                outcome="ready" if i % 97 != 5 else "cloud_unavailable",
                latency_ms=ctx.rng.uniform(40, 400),
                vm_name=ctx.vms[i % len(ctx.vms)].name if ctx.vms else "",
            )
            for i in range(ctx.size.probes)
        ],
    )
    ctx.count("connect records", written)
