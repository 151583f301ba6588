"""The live dashboard's websocket. It pushes a fresh snapshot every
`DASHBOARD_PUSH_INTERVAL` seconds, read from the database: that works with the
in-memory channel layer too, where events sent by a Celery worker would never
arrive."""

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from .selectors import dashboard_snapshot


class DashboardConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_staff:
            await self.close(code=4403)
            return
        await self.accept()
        self._pusher = asyncio.create_task(self._push_forever())

    async def disconnect(self, code):
        pusher = getattr(self, "_pusher", None)
        if pusher is not None:
            pusher.cancel()

    async def _push_forever(self):
        while True:
            snapshot = await database_sync_to_async(dashboard_snapshot)()
            await self.send_json({"type": "snapshot", "data": snapshot})
            await asyncio.sleep(settings.DASHBOARD_PUSH_INTERVAL)
