"""The live dashboard's websocket.

The consumer joins the "dashboard" group and pushes a fresh snapshot, read from
the database, as soon as a `dashboard.changed` event arrives (see
`monitoring.events`); a burst of events gives one push, at most one every
`EVENT_PUSH_SPACING` seconds. It also pushes every `DASHBOARD_PUSH_INTERVAL`
seconds: with the in-memory channel layer (the embedded default) events sent by a
Celery worker never arrive, and with any layer an event may be lost."""

import asyncio
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from portal.roles import Role, has_role

from .events import DASHBOARD_GROUP
from .selectors import dashboard_snapshot

logger = logging.getLogger(__name__)

# Least time between two pushes caused by events (seconds).
EVENT_PUSH_SPACING = 0.5
# Reasons of coalesced events sent along with one push, at most.
MAX_REASONS = 10


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        allowed = await database_sync_to_async(has_role)(self.scope.get("user"), Role.VIEWER)
        if not allowed:
            await self.close(code=4403)
            return
        self._lock = asyncio.Lock()
        self._last_push = float("-inf")
        self._reasons: list[str] = []
        self._event_push: asyncio.Task | None = None
        self._joined = False
        await self.accept()
        if self.channel_layer is not None:
            try:
                await self.channel_layer.group_add(DASHBOARD_GROUP, self.channel_name)
                self._joined = True
            except Exception as exc:  # a layer that is down: the periodic push remains
                logger.warning("dashboard cannot join its event group: %s", exc)
        self._pusher = asyncio.create_task(self._push_forever())

    async def disconnect(self, code):
        for task in (getattr(self, "_pusher", None), getattr(self, "_event_push", None)):
            if task is not None:
                task.cancel()
        if getattr(self, "_joined", False):
            try:
                await self.channel_layer.group_discard(DASHBOARD_GROUP, self.channel_name)
            except Exception as exc:
                logger.warning("dashboard cannot leave its event group: %s", exc)

    async def dashboard_changed(self, event):
        """Something shown has changed: push soon, once for a whole burst."""
        if len(self._reasons) < MAX_REASONS and event.get("reason"):
            if event["reason"] not in self._reasons:
                self._reasons.append(event["reason"])
        if self._event_push is not None and not self._event_push.done():
            return  # a push is already due; it will read this change too
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_push + EVENT_PUSH_SPACING - loop.time())
        self._event_push = asyncio.create_task(self._push_after(delay))

    async def _push_after(self, delay: float):
        await asyncio.sleep(delay)
        reasons, self._reasons = self._reasons, []
        # From here a new event schedules a push of its own (spaced from this one):
        # this push may read the database before that event's change was visible.
        self._last_push = asyncio.get_running_loop().time()
        self._event_push = None
        await self._push(reasons)

    async def _push_forever(self):
        interval = settings.DASHBOARD_PUSH_INTERVAL
        loop = asyncio.get_running_loop()
        while True:
            wait = self._last_push + interval - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._push([])

    async def _push(self, reasons: list[str]):
        async with self._lock:
            self._last_push = asyncio.get_running_loop().time()
            try:
                snapshot = await database_sync_to_async(dashboard_snapshot)()
                await self.send_json({"type": "snapshot", "reasons": reasons, "data": snapshot})
            except Exception:
                # The next push tries again; the page keeps showing the last figures.
                logger.exception("dashboard push failed")
