"""What every builder of a generated world shares: the size, a seeded random
generator (two runs write the same data), helpers for names and addresses, the
rows built so far, and bulk inserts that keep the times the world sets."""

import random
import uuid
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import islice

from django.db import models
from django.utils import timezone

from .sizes import WorldSize

# Rows per INSERT statement.
BATCH = 1000
# Rows built in memory before they are written, for the largest tables.
CHUNK = 20_000
# How far back the world's history goes.
HISTORY_DAYS = 30


class Context:
    """One world being built. Each builder reads the rows the earlier ones left
    here (`regions`, `hosts`, `pools`, `vms`, …) and adds its own."""

    def __init__(self, size: WorldSize, *, prefix: str, seed: int, password: str | None):
        self.size = size
        self.prefix = prefix
        # The encoded password of every thin-client user (None: unusable).
        self.password = password
        self.rng = random.Random(f"{prefix}:{seed}")
        self.now = timezone.now()
        # Addresses differ between two worlds of one database.
        self.base = zlib.crc32(prefix.encode()) & 0xFF
        self.counts: dict[str, int] = {}

    def ago(self, *, days: float = HISTORY_DAYS) -> datetime:
        return self.now - timedelta(seconds=self.rng.uniform(0, days * 86400))

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def mac(self, index: int) -> str:
        octets = [0x02, self.base, (index >> 24) & 0xFF, (index >> 16) & 0xFF]
        octets += [(index >> 8) & 0xFF, index & 0xFF]
        return ":".join(f"{octet:02x}" for octet in octets)

    def address(self, network: int, index: int) -> str:
        return f"{network}.{self.base}.{(index >> 8) & 0xFF}.{index & 0xFF or 1}"

    def count(self, name: str, rows: int) -> None:
        self.counts[name] = self.counts.get(name, 0) + rows


def _required_times(model: type[models.Model]) -> list[str]:
    return [
        field.attname
        for field in model._meta.concrete_fields
        if isinstance(field, models.DateTimeField) and not field.null
    ]


def insert(model: type[models.Model], objects: Sequence[models.Model]) -> list:
    """Bulk insert, stamping the required times still empty (the automatic ones
    the world does not set) with now. Returns the objects, with their ids."""
    now = timezone.now()
    required = _required_times(model)
    for obj in objects:
        for name in required:
            if getattr(obj, name) is None:
                setattr(obj, name, now)
    return model.objects.bulk_create(objects, batch_size=BATCH)


def insert_stream(model: type[models.Model], objects: Iterable[models.Model]) -> int:
    """Bulk insert rows made one by one, `CHUNK` at a time, keeping none of them
    (the audit trail and the connect records run to hundreds of thousands).
    Returns how many were written."""
    written = 0
    iterator = iter(objects)
    while chunk := list(islice(iterator, CHUNK)):
        insert(model, chunk)
        written += len(chunk)
    return written


@contextmanager
def timestamps_as_given(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let bulk inserts keep the times the world sets (history over weeks) instead
    of `auto_now` / `auto_now_add` stamping every row with this instant."""
    stamped = [
        field
        for model in model_classes
        for field in model._meta.concrete_fields
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    ]
    saved = [(field, field.auto_now, field.auto_now_add) for field in stamped]
    for field in stamped:
        field.auto_now = field.auto_now_add = False
    try:
        yield
    finally:
        for field, auto_now, auto_now_add in saved:
            field.auto_now, field.auto_now_add = auto_now, auto_now_add
