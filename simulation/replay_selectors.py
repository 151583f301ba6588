"""Reads of the placement comparison."""

from .models import PlacementRun


def placement_runs_recent(*, limit: int = 20) -> list[PlacementRun]:
    """The latest runs, newest first, without their (large) reports."""
    return list(PlacementRun.objects.defer("results")[:limit])


def placement_run_latest_done() -> PlacementRun | None:
    return PlacementRun.objects.filter(status=PlacementRun.Status.DONE).first()
