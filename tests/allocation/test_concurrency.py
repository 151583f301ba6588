"""Two logins never get the same VM: real concurrent HTTP requests against a live
server, on PostgreSQL (row locks and concurrent transactions are the point)."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from allocation.models import Binding
from pools.choices import VMState
from pools.models import VM
from tests.factories import (
    PASSWORD,
    AllocatorFactory,
    TerminalFactory,
    UserFactory,
    VMPoolFactory,
    fill_pool,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def storm(url: str, bodies: list[dict], concurrency: int) -> list[httpx.Response]:
    """Send every body at once (as far as `concurrency` threads allow)."""
    barrier = threading.Barrier(concurrency)

    def send(indexed):
        index, body = indexed
        if index < concurrency:
            barrier.wait()  # the first wave leaves together
        with httpx.Client(timeout=60) as client:
            return client.post(url, json=body)

    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        return list(executor.map(send, enumerate(bodies)))


def test_200_users_against_150_ready_vms(storm_server):
    pool = VMPoolFactory(region__hosts=6)  # room for 150 VMs
    fill_pool(pool, 150)
    AllocatorFactory(is_default=True, pools=[pool])
    terminal = TerminalFactory()
    users = UserFactory.create_batch(200)
    bodies = [
        {"username": u.username, "password": PASSWORD, "terminal": terminal.serial} for u in users
    ]

    responses = storm(f"{storm_server}/api/thin-client/v1/connect", bodies, concurrency=40)

    codes = Counter(r.status_code for r in responses)
    by_state = Counter(VM.objects.values_list("state", flat=True))
    assert codes == {200: 150, 202: 50}, (codes, by_state)
    handed_out = [r.json()["desktop"]["id"] for r in responses if r.status_code == 200]
    assert len(set(handed_out)) == 150
    assert VM.objects.filter(state=VMState.IN_USE).count() == 150
    assert Binding.objects.filter(released_at__isnull=True).count() == 150


def test_one_user_connecting_ten_times_at_once_gets_one_vm(storm_server):
    pool = VMPoolFactory()
    fill_pool(pool, 10)
    AllocatorFactory(is_default=True, pools=[pool])
    terminal = TerminalFactory()
    user = UserFactory()
    body = {"username": user.username, "password": PASSWORD, "terminal": terminal.serial}

    responses = storm(f"{storm_server}/api/thin-client/v1/connect", [body] * 10, concurrency=10)

    assert {r.status_code for r in responses} == {200}
    assert len({r.json()["desktop"]["id"] for r in responses}) == 1
    assert VM.objects.filter(state=VMState.IN_USE).count() == 1
