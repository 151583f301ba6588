"""The connect path in-process, profiled: connects sent one after the other through
Django's test client (the whole middleware, view and service stack, without the
HTTP server), under cProfile, with the SQL queries of each connect counted.

It runs in its own process with the same environment as the benchmark's server
(database, directory, cache, broker), so what it profiles is what the server runs:

    python -m allocation.storm.profile BODIES.json [--top 25]

and prints the web-side CPU of one connect (the first half of the bodies, without
the profiler), the functions that took the most time (cumulative, then own time), the
queries per connect, and the queries of one connect grouped by statement."""

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import sys
import time
from collections import Counter

PATH = "/api/thin-client/v1/connect"
# Functions of the project (and of django-auth-ldap, which does the directory work).
_OURS = r"/(allocation|pools|portal|cloud|monitoring|django_auth_ldap)/"


def _statement(sql: str) -> str:
    """A query with its literal values taken out, so repeats group together."""
    sql = re.sub(r"'(?:[^']|'')*'", "?", sql)
    sql = re.sub(r"\b\d+(\.\d+)?\b", "?", sql)
    return re.sub(r"\s+", " ", sql)[:160]


def profile_connects(bodies: list[dict], *, top: int = 25) -> str:
    """Send each body once; the profile and query report as text."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    # The first connect imports and warms what the server's workers have warm.
    warm, bodies = bodies[0], bodies[1:]
    client.post(PATH, warm, content_type="application/json")

    # The first half unprofiled, timed by this process's own CPU clock: what one
    # connect costs the web side (Django, DRF, the LDAP and database clients), which
    # other work on the machine hardly changes, unlike wall time.
    timed, bodies = bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]
    cpu_started = time.process_time()
    timed_statuses = Counter(
        client.post(PATH, body, content_type="application/json").status_code for body in timed
    )
    cpu_per_connect = (time.process_time() - cpu_started) / max(len(timed), 1)

    counts: list[int] = []
    statuses: Counter = Counter()
    sample: list[str] = []
    # Statement -> (executions, seconds) over every profiled connect.
    query_time: dict[str, list] = {}
    profiler = cProfile.Profile()
    started = time.perf_counter()
    for body in bodies:
        with CaptureQueriesContext(connection) as queries:
            profiler.enable()
            response = client.post(PATH, body, content_type="application/json")
            profiler.disable()
        statuses[response.status_code] += 1
        counts.append(len(queries))
        statements = [(_statement(q["sql"]), float(q["time"])) for q in queries.captured_queries]
        if not sample:
            sample = [statement for statement, _ in statements]
        for statement, seconds in statements:
            spent = query_time.setdefault(statement, [0, 0.0])
            spent[0] += 1
            spent[1] += seconds
    elapsed = time.perf_counter() - started

    out = io.StringIO()
    out.write(
        f"timed connects:          {len(timed)} (answers {dict(timed_statuses)}), "
        f"{cpu_per_connect * 1000:.1f} ms of web-side CPU each, in-process without the profiler\n"
    )
    out.write(
        f"profiled connects:       {len(bodies)} (answers {dict(statuses)}), "
        f"{elapsed / max(len(bodies), 1) * 1000:.1f} ms each in-process with the profiler on\n"
    )
    if counts:
        out.write(
            f"queries per connect:     mean {sum(counts) / len(counts):.1f}, "
            f"min {min(counts)}, max {max(counts)}\n"
        )
    out.write("queries of one connect, by statement:\n")
    for statement, count in Counter(sample).most_common():
        out.write(f"  {count:3d} x {statement}\n")
    runs = max(len(bodies), 1)
    out.write("database time per connect, by statement (ms, as the client waited for it):\n")
    for statement, (count, seconds) in sorted(query_time.items(), key=lambda item: -item[1][1])[
        :top
    ]:
        out.write(f"  {seconds / runs * 1000:7.2f}  {count / runs:4.1f} x {statement}\n")
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative")
    out.write(f"\ntop {top} of the project and django-auth-ldap, by cumulative time:\n")
    stats.print_stats(_OURS, top)
    stats.sort_stats("tottime")
    out.write(f"\ntop {top} of everything, by own time:\n")
    stats.print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bodies")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    with open(args.bodies) as source:
        bodies = json.load(source)
    sys.stdout.write(profile_connects(bodies, top=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
