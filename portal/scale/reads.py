"""The reads at scale: every list of the ops API (its first page, a filtered page,
its last page, and its largest page), the dashboard page, and the first snapshot
the dashboard's websocket sends, each asked through the real URL by a signed-in
administrator, in process."""

import asyncio
import contextlib
import math
import time
from urllib.parse import urlencode

from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from allocation.models import Binding
from cloud.models import Region
from monitoring.consumers import DashboardConsumer
from portal.api.resources import OpsPagination

from .budgets import Budgets
from .timing import Measure, elapsed_ms

API = "/api/v1/"
# Seconds the first websocket message may take before the view counts as failed.
SNAPSHOT_TIMEOUT = 20


def _filters() -> dict[str, dict[str, str]]:
    """A filter for each list that has one, on values the world holds: the
    hosts that are down, the ready VMs of a region, the active bindings of a
    pool that has some, one kind of audit event."""
    region = Region.objects.order_by("name").values_list("name", flat=True).first() or ""
    busy_pool = (
        Binding.objects.filter(released_at__isnull=True)
        .order_by("vm__pool__name")
        .values_list("vm__pool__name", flat=True)
        .first()
    )
    return {
        "regions": {},
        "hosts": {"state": "down"},
        "pools": {"region": region} if region else {},
        "vms": {"state": "ready", "region": region} if region else {"state": "ready"},
        "bindings": {"active": "true", "pool": busy_pool} if busy_pool else {"active": "true"},
        "audit-events": {"action": "vm.swap"},
    }


class Reader:
    """Asks pages as one administrator and measures them."""

    def __init__(self, client: Client, *, repeat: int, budgets: Budgets):
        self.client = client
        self.repeat = repeat
        self.budgets = budgets

    def _once(self, url: str, measure: Measure) -> dict | None:
        started = time.perf_counter()
        try:
            with CaptureQueriesContext(connection) as queries:
                response = self.client.get(url)
                body = response.content
        except Exception as exc:  # a crashing view is a finding, not the end of the run
            measure.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return None
        measure.add(ms=elapsed_ms(started), queries=len(queries), status=response.status_code)
        if response.get("Content-Type", "").startswith("application/json"):
            return response.json() if body else None
        return None

    def measure(self, group: str, label: str, url: str, budget_ms: float) -> Measure:
        """Asked once to warm up (not counted), then `repeat` times."""
        warm = Measure(group, label)
        self._once(url, warm)
        measure = Measure(group, label, budget_ms=budget_ms, note=url)
        if warm.failed:
            measure.errors.append(warm.describe_failure())
            return measure
        for _ in range(self.repeat):
            self._once(url, measure)
        return measure

    def api_lists(self) -> list[Measure]:
        budget = self.budgets.list_median_ms
        measures = []
        for name, filters in _filters().items():
            url = f"{API}{name}/"
            first = self.measure("api", f"{name}: first page", url, budget)
            measures.append(first)
            if filters:
                filtered = f"{url}?{urlencode(filters)}"
                measures.append(self.measure("api", f"{name}: filtered", filtered, budget))
            else:
                measures.append(_skipped(f"{name}: filtered", "no filters"))
            probe = Measure("api", name)
            page = self._once(url, probe) or {}
            pages = math.ceil(page.get("count", 0) / OpsPagination.page_size)
            if pages > 1:
                late = f"{url}?page={pages}"
                measures.append(self.measure("api", f"{name}: last page ({pages})", late, budget))
            else:
                measures.append(_skipped(f"{name}: last page", "one page only"))
            big = f"{url}?page_size={OpsPagination.max_page_size}"
            label = f"{name}: {OpsPagination.max_page_size} a page"
            measures.append(self.measure("api", label, big, budget))
        return measures

    def dashboard(self, user) -> list[Measure]:
        budget = self.budgets.dashboard_median_ms
        page = self.measure("dashboard", "dashboard page", "/", budget)
        snapshot = Measure(
            "dashboard",
            "dashboard websocket: first snapshot",
            budget_ms=budget,
            note="ws/dashboard/",
        )
        warm = Measure("dashboard", "warm-up")
        self._first_snapshot(user, warm)
        for _ in range(self.repeat if not warm.failed else 0):
            self._first_snapshot(user, snapshot)
        if warm.failed:
            snapshot.errors.append(warm.describe_failure())
        return [page, snapshot]

    def _first_snapshot(self, user, measure: Measure) -> None:
        """Open the dashboard's websocket as `user` and time its first message."""

        async def first_message():
            communicator = WebsocketCommunicator(DashboardConsumer.as_asgi(), "/ws/dashboard/")
            communicator.scope["user"] = user
            try:
                connected, _ = await communicator.connect(timeout=SNAPSHOT_TIMEOUT)
                if not connected:
                    return None
                return await communicator.receive_json_from(timeout=SNAPSHOT_TIMEOUT)
            finally:
                # A consumer that already failed cannot take the disconnect.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await communicator.disconnect()

        started = time.perf_counter()
        try:
            with CaptureQueriesContext(connection) as queries:
                message = async_to_sync(first_message)()
        except (Exception, asyncio.CancelledError) as exc:
            # A timeout: the consumer sent nothing (its own log says why).
            measure.errors.append(f"no snapshot: {type(exc).__name__} {exc}"[:200])
            return
        ok = isinstance(message, dict) and message.get("type") == "snapshot"
        measure.add(ms=elapsed_ms(started), queries=len(queries), status=200 if ok else None)


def _skipped(label: str, why: str) -> Measure:
    return Measure("api", label, skipped=True, note=f"n/a ({why})")
