"""The parameters a run works by, frozen when it starts, and its window.

A run copies its task's parameters (`RunSpec`) so that editing the task never
changes a run already under way. The window is a time of day in the portal's time
zone (`DESKOPS_TIME_ZONE`): from `window_start` to `window_end`, on the next day
when `window_ends_next_day` is set (a night window such as 22:00-05:00). No window
means any time. Pure functions: no database, easy to test."""

from dataclasses import asdict, dataclass, fields
from datetime import datetime, time, timedelta

from django.utils import timezone


@dataclass(frozen=True)
class RunSpec:
    action: str
    script: str = ""
    package: str = ""
    image: str = ""
    credential_id: int | None = None
    batch_size: int = 10
    max_parallel: int = 5
    pause_seconds: int = 60
    canary_size: int = 0
    max_failure_percent: int = 10
    in_use_policy: str = "skip"
    notice_minutes: int = 5
    notice_message: str = ""
    timeout_seconds: int = 600
    window_start: str | None = None  # "HH:MM[:SS]"
    window_end: str | None = None
    window_ends_next_day: bool = False

    @classmethod
    def from_task(cls, task) -> "RunSpec":
        values = {}
        for field in fields(cls):
            value = getattr(task, field.name)
            if field.name in ("window_start", "window_end"):
                value = value.isoformat() if value else None
            values[field.name] = value
        return cls(**values)

    @classmethod
    def from_json(cls, data: dict) -> "RunSpec":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_json(self) -> dict:
        return asdict(self)

    @property
    def has_window(self) -> bool:
        return bool(self.window_start and self.window_end)

    def batch_capacity(self, batch: int) -> int:
        """How many VMs batch number `batch` takes: the canary first, if any."""
        if batch == 0 and self.canary_size:
            return self.canary_size
        return self.batch_size


def _open_interval(spec: RunSpec, local: datetime) -> tuple[datetime, datetime] | None:
    """The occurrence of the window that contains `local`, or None."""
    start = time.fromisoformat(spec.window_start)
    end = time.fromisoformat(spec.window_end)
    for day in (local.date() - timedelta(days=1), local.date()):
        opens = local.replace(
            year=day.year,
            month=day.month,
            day=day.day,
            hour=start.hour,
            minute=start.minute,
            second=start.second,
            microsecond=0,
        )
        closes_day = day + timedelta(days=1) if spec.window_ends_next_day else day
        closes = local.replace(
            year=closes_day.year,
            month=closes_day.month,
            day=closes_day.day,
            hour=end.hour,
            minute=end.minute,
            second=end.second,
            microsecond=0,
        )
        if opens <= local < closes:
            return opens, closes
    return None


def window_is_open(spec: RunSpec, moment: datetime | None = None) -> bool:
    if not spec.has_window:
        return True
    local = timezone.localtime(moment or timezone.now())
    return _open_interval(spec, local) is not None


def window_closes_at(spec: RunSpec, moment: datetime | None = None) -> datetime | None:
    """When the window open at `moment` closes; None without a window or outside it."""
    if not spec.has_window:
        return None
    local = timezone.localtime(moment or timezone.now())
    interval = _open_interval(spec, local)
    return interval[1] if interval else None


def window_opens_next(spec: RunSpec, moment: datetime | None = None) -> datetime | None:
    """When the window next opens after `moment` (for the page: "waits until")."""
    if not spec.has_window:
        return None
    local = timezone.localtime(moment or timezone.now())
    start = time.fromisoformat(spec.window_start)
    today = local.replace(hour=start.hour, minute=start.minute, second=start.second, microsecond=0)
    return today if today > local else today + timedelta(days=1)
