"""Shared fixtures. Tests that need a real server carry a marker; without the
server they skip with the reason, except in CI (CI=true), where a skipped tier is
a failure."""

import os
from contextlib import contextmanager

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from django.test.testcases import LiveServerThread, _StaticFilesHandler

from tests import factories

IN_CI = os.environ.get("CI") == "true"


def require(condition: bool, reason: str) -> None:
    """Skip the test when a server it needs is missing; fail instead in CI."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{reason} (in CI this tier must run)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _tier_requirements(request):
    if request.node.get_closest_marker("postgres"):
        require(
            connection.vendor == "postgresql",
            "needs PostgreSQL: run with DATABASE_URL=postgres://…",
        )


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The real hasher costs ~0.3 s a login; the tests log in hundreds of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True, scope="session")
def _broker_in_memory():
    """Tasks queued by the code under test go to an in-memory broker that nothing
    consumes: tests call services directly and never leave files behind."""
    from portal.celery import app

    app.conf.broker_url = "memory://"
    app.conf.broker_transport_options = {}
    app.conf.task_always_eager = False


@contextmanager
def celery_broker(url: str):
    """Point the Celery app at another broker for a moment. The app keeps its
    connection and producer pools once made, so they are dropped on the way in and
    out; otherwise the first broker a test used would serve every later test."""
    from portal.celery import app

    def drop_pools():
        app._pool = None
        app.amqp._producer_pool = None

    saved = app.conf.broker_url
    app.conf.broker_url = url
    drop_pools()
    try:
        yield app
    finally:
        app.conf.broker_url = saved
        drop_pools()


@pytest.fixture
def region(db):
    return factories.RegionFactory()


@pytest.fixture
def pool(region):
    return factories.VMPoolFactory(region=region)


@pytest.fixture
def desk(db):
    """A ready-to-connect world: one enrolled terminal, a default allocator over
    one pool with ready VMs, and a user."""
    return factories.Desk.build()


class _BacklogServer(ThreadedWSGIServer):
    # Django's test server queues only 10 connections; a login storm needs more.
    request_queue_size = 256


class _StormServerThread(LiveServerThread):
    server_class = _BacklogServer


@pytest.fixture
def storm_server(transactional_db):
    """A threaded HTTP server of the app on the loopback that accepts a burst of
    concurrent connections (pytest-django's live_server drops past 10)."""
    thread = _StormServerThread("127.0.0.1", _StaticFilesHandler)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    yield f"http://127.0.0.1:{thread.port}"
    thread.terminate()
