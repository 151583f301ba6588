"""The terminal registry: enrollment one by one and in bulk from CSV."""

import csv
import io
import re
from dataclasses import dataclass, field

from django.db import transaction

from allocation.choices import TerminalStatus
from allocation.models import Site, Terminal
from portal.services import audit_record

MAC_ADDRESS = re.compile(r"^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$")
SERIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
CSV_COLUMNS = ("serial", "mac_address", "site", "seat", "tags", "enabled")
MAX_IMPORT_ROWS = 20000


def terminal_snapshot(terminal: Terminal) -> dict:
    return {
        "serial": terminal.serial,
        "mac_address": terminal.mac_address,
        "site": terminal.site.name if terminal.site_id else None,
        "seat": terminal.seat,
        "tags": list(terminal.tags or []),
        "status": terminal.status,
        "enabled": terminal.enabled,
    }


def normalize_mac(value: str) -> str:
    return value.strip().lower().replace("-", ":")


@transaction.atomic
def terminal_save(
    *, terminal: Terminal | None, fields: dict, actor: str, request_id: str = ""
) -> Terminal:
    """Create or change a terminal; an operator who saves a terminal with a site
    enrolls it."""
    before = terminal_snapshot(terminal) if terminal is not None else None
    terminal = terminal or Terminal()
    for name, value in fields.items():
        setattr(terminal, name, value)
    if terminal.mac_address:
        terminal.mac_address = normalize_mac(terminal.mac_address)
    terminal.save()
    audit_record(
        action="terminal.update" if before else "terminal.create",
        obj=terminal,
        actor=actor,
        before=before,
        after=terminal_snapshot(terminal),
        request_id=request_id,
    )
    return terminal


def terminal_enroll(
    *,
    terminal: Terminal,
    site: Site | None,
    seat: str = "",
    tags: list[str] | None = None,
    actor: str,
    request_id: str = "",
) -> Terminal:
    """Let a (pending) terminal get desktops, at a site and seat."""
    fields = {"status": TerminalStatus.ENROLLED, "site": site, "seat": seat, "enabled": True}
    if tags is not None:
        fields["tags"] = tags
    return terminal_save(terminal=terminal, fields=fields, actor=actor, request_id=request_id)


@dataclass
class ImportRow:
    line: int
    serial: str
    outcome: str  # "created", "updated" or "refused"
    reason: str = ""


@dataclass
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)


def _row_problem(row: dict, sites: dict[str, Site], seen: set[str]) -> str:
    serial = row["serial"]
    if not serial:
        return "the serial is empty"
    if not SERIAL.match(serial):
        return "the serial may hold only letters, digits and . _ : - (64 at most)"
    if serial in seen:
        return "the serial appears twice in the file"
    if row["mac_address"] and not MAC_ADDRESS.match(row["mac_address"]):
        return f"{row['mac_address']!r} is not a MAC address"
    if row["site"] and row["site"] not in sites:
        return f"there is no site {row['site']!r}"
    if row["enabled"].lower() not in {"", "true", "false", "yes", "no", "1", "0"}:
        return f"enabled must be true or false, not {row['enabled']!r}"
    if len(row["seat"]) > 64:
        return "the seat is longer than 64 characters"
    return ""


def terminals_import_csv(*, text: str, actor: str, request_id: str = "") -> ImportReport:
    """Enroll terminals from CSV (a header row naming `serial` and any of
    mac_address, site, seat, tags — separated by `;` — and enabled). Each good row
    creates or updates and enrolls its terminal; each bad row is refused with the
    reason; one bad row does not stop the others."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    if "serial" not in header:
        report.rows.append(ImportRow(1, "", "refused", "the header row must name a serial column"))
        return report
    unknown = sorted(set(header) - set(CSV_COLUMNS))
    if unknown:
        report.rows.append(ImportRow(1, "", "refused", f"unknown columns: {', '.join(unknown)}"))
        return report
    reader.fieldnames = header
    sites = {site.name: site for site in Site.objects.all()}
    seen: set[str] = set()
    for line, raw in enumerate(reader, start=2):
        if line - 1 > MAX_IMPORT_ROWS:
            report.rows.append(
                ImportRow(line, "", "refused", f"more than {MAX_IMPORT_ROWS} rows; split the file")
            )
            break
        row = {column: (raw.get(column) or "").strip() for column in CSV_COLUMNS}
        problem = _row_problem(row, sites, seen)
        if problem:
            report.rows.append(ImportRow(line, row["serial"], "refused", problem))
            continue
        seen.add(row["serial"])
        terminal = Terminal.objects.filter(serial=row["serial"]).first()
        terminal_save(
            terminal=terminal,
            fields={
                "serial": row["serial"],
                "mac_address": row["mac_address"],
                "site": sites.get(row["site"]),
                "seat": row["seat"],
                "tags": [tag.strip() for tag in row["tags"].split(";") if tag.strip()],
                "enabled": row["enabled"].lower() not in {"false", "no", "0"},
                "status": TerminalStatus.ENROLLED,
            },
            actor=actor,
            request_id=request_id,
        )
        report.rows.append(ImportRow(line, row["serial"], "updated" if terminal else "created"))
    return report
