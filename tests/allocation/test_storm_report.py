"""The login storm's arithmetic: percentiles, throughput, answer counts and the
check that no desktop was given to two users."""

import os
import time
from collections import Counter
from pathlib import Path

import pytest

from allocation.models import DesktopSession
from allocation.services import desktop_connect
from allocation.storm.client import Answer, _answer
from allocation.storm.report import (
    answer_label,
    desktops_given_twice,
    storm_report,
    storm_stats,
    vms_shared_in_database,
)
from allocation.storm.server import _proc_cpu
from tests.factories import PASSWORD, Desk, UserFactory


def ready(user: str, desktop: int, ms: float = 10.0) -> Answer:
    return Answer(user, 200, "ready", desktop, ms)


def test_percentiles_are_nearest_rank_over_every_answer():
    answers = [ready(f"u{i}", i, ms=float(i)) for i in range(1, 101)]

    stats = storm_stats(answers, wall_seconds=2.0)

    assert stats.clients == 100
    assert stats.connects_per_second == 50.0
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms, stats.max_ms) == (50.0, 95.0, 99.0, 100.0)


def test_answers_are_counted_by_status_and_body():
    answers = [
        ready("a", 1),
        ready("b", 2),
        Answer("c", 202, "preparing", None, 5.0),
        Answer("d", 401, "invalid_credentials", None, 5.0),
        Answer("e", 0, "ConnectionResetError", None, 5.0),
        Answer("f", 500, "", None, 5.0),
    ]

    stats = storm_stats(answers, wall_seconds=1.0)

    assert stats.answers == Counter(
        {
            "200 ready": 2,
            "202 preparing": 1,
            "401 invalid_credentials": 1,
            "0 ConnectionResetError": 1,
            "500 -": 1,
        }
    )
    assert answer_label(answers[-1]) == "500 -"


def test_the_target_needs_both_throughput_and_p99():
    fast_but_few = storm_stats([ready(f"u{i}", i, ms=20) for i in range(100)], wall_seconds=1.0)
    many_but_slow = storm_stats([ready(f"u{i}", i, ms=400) for i in range(400)], wall_seconds=1.0)
    both = storm_stats([ready(f"u{i}", i, ms=40) for i in range(400)], wall_seconds=1.0)

    assert not fast_but_few.target_met
    assert not many_but_slow.target_met
    assert both.target_met


def test_a_desktop_given_to_two_users_is_found():
    answers = [ready("alice", 7), ready("bob", 8), ready("carol", 7), ready("dave", 9)]

    assert desktops_given_twice(answers) == {7: ["alice", "carol"]}


def test_the_same_user_getting_their_desktop_twice_is_not_a_double_handout():
    answers = [ready("alice", 7), ready("alice", 7), Answer("bob", 202, "preparing", None, 1.0)]

    assert desktops_given_twice(answers) == {}


def test_the_report_says_failed_when_a_desktop_went_to_two_users():
    answers = [ready("alice", 7), ready("bob", 7)]
    stats = storm_stats(answers, wall_seconds=1.0)

    text = storm_report(
        stats,
        concurrency=2,
        workers=1,
        given_twice=desktops_given_twice(answers),
        shared_in_database=["VM 7 has 2 active bindings"],
    )

    assert "no VM handed out twice (answers):  FAILED, 1: 7: ['alice', 'bob']" in text
    assert "no VM handed out twice (database): FAILED, 1: VM 7 has 2 active bindings" in text
    assert "-> missed" in text


def test_the_client_reads_the_body_of_each_kind_of_answer():
    ok = _answer("alice", 200, b'{"status": "ready", "desktop": {"id": 12}}', 3.0)
    refused = _answer("bob", 401, b'{"error": "invalid_credentials", "detail": "x"}', 2.0)
    html = _answer("carol", 502, b"<html>Bad gateway</html>", 1.0)

    assert (ok.outcome, ok.desktop) == ("ready", 12)
    assert (refused.outcome, refused.desktop) == ("invalid_credentials", None)
    assert (html.status, html.outcome, html.desktop) == (502, "", None)


@pytest.mark.django_db
def test_the_database_check_finds_a_vm_with_two_users_sessions():
    desk = Desk.build()
    result = desktop_connect(
        username=desk.user.username, password=PASSWORD, terminal_serial=desk.terminal.serial
    )
    assert vms_shared_in_database() == []

    # A second user's open session on the same VM: what a double handout leaves.
    DesktopSession.objects.create(
        user=UserFactory(), terminal=desk.terminal, vm=result.session.vm, binding=None
    )

    assert vms_shared_in_database() == [f"VM {result.session.vm.pk} has open sessions of 2 users"]


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux's /proc")
def test_the_server_cpu_is_read_from_proc_as_the_kernel_counts_it():
    sum(range(2_000_000))  # some CPU of our own to count

    counted, measured = _proc_cpu(os.getpid()), time.process_time()

    assert counted > 0
    # Clock ticks are coarser than process_time(): allow a few of them.
    assert abs(counted - measured) < 0.1
