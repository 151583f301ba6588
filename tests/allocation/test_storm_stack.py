"""A small login storm through the real command: gunicorn serving the app, a
throwaway slapd holding the users, PostgreSQL and Redis. Every client gets a
desktop of its own."""

import shutil
import socket
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from allocation.models import Binding
from pools.choices import VMState
from pools.models import VM
from tests.conftest import require

# On PostgreSQL (its tier), as the storm needs row locks shared by many processes.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def redis_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_a_small_storm_hands_every_client_a_desktop_of_its_own():
    require(
        connection.vendor == "postgresql", "needs PostgreSQL: run with DATABASE_URL=postgres://…"
    )
    require(
        shutil.which("slapd", path="/usr/sbin:/usr/bin") is not None,
        "needs slapd: apt-get install slapd ldap-utils",
    )
    require(redis_answers(), "needs a Redis server on 127.0.0.1:6379")
    out = StringIO()

    call_command(
        "bench_login_storm",
        clients=60,
        concurrency=8,
        workers=2,
        spare=5,
        cache_db=12,
        broker_db=13,
        stdout=out,
    )

    text = out.getvalue()
    assert "clients:                 60" in text
    assert "  200 ready                    60\n" in text, text
    assert "no VM handed out twice (answers):  ok" in text
    assert "no VM handed out twice (database): ok" in text
    active = Binding.objects.filter(released_at__isnull=True)
    assert active.count() == 60
    assert active.values("vm").distinct().count() == 60
    assert VM.objects.filter(state=VMState.IN_USE).count() == 60
    assert VM.objects.filter(state=VMState.READY).count() == 5
