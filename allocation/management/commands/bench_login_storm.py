"""Benchmark: a login storm. N simulated thin clients (each its own directory user
at its own enrolled terminal) connect once each, `concurrency` at a time, over
HTTP against gunicorn serving the app, with PostgreSQL, a throwaway slapd holding
the users, Redis as cache and Celery broker, and a pool of ready VMs. Prints the
throughput, latency percentiles, the count of each answer and the checks that no
VM was handed out twice (from the answers and from the database); exits non-zero
when a VM was.

It builds its world in the PostgreSQL database it is pointed at; run it through
`scripts/bench.sh storm`, which gives it a throwaway one."""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from allocation.storm.client import Answer
from allocation.storm.report import (
    desktops_given_twice,
    storm_report,
    storm_stats,
    vms_shared_in_database,
)
from allocation.storm.seed import (
    GROUPS,
    PEOPLE,
    directory_entries,
    storm_users,
    storm_world_seed,
)
from allocation.storm.server import Gunicorn, database_url
from allocation.storm.slapd import ThrowawayDirectory
from pools.models import VMPool


class Command(BaseCommand):
    help = "Drive a login storm of simulated thin clients against gunicorn and report."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=2000, help="Thin clients, one each.")
        parser.add_argument(
            "--concurrency", type=int, default=32, help="Clients connecting at the same time."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2 * (os.cpu_count() or 1) + 1,
            help="gunicorn worker processes (default: 2 x cores + 1).",
        )
        parser.add_argument("--worker-class", default="sync", help="gunicorn worker class.")
        parser.add_argument("--threads", type=int, default=1, help="Threads per worker (gthread).")
        parser.add_argument(
            "--spare", type=int, default=100, help="Ready VMs beyond one per client."
        )
        parser.add_argument(
            "--redis", default="redis://127.0.0.1:6379", help="Redis server (no database index)."
        )
        parser.add_argument("--cache-db", type=int, default=14, help="Redis database: cache.")
        parser.add_argument("--broker-db", type=int, default=15, help="Redis database: broker.")
        parser.add_argument(
            "--profile",
            type=int,
            default=0,
            metavar="N",
            help="Afterwards, profile N more connects in-process (cProfile, query counts).",
        )

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("The login storm needs PostgreSQL: set DATABASE_URL.")
        if VMPool.objects.filter(name="storm").exists():
            raise CommandError("This database already holds a storm pool: use a fresh one.")
        clients, profiled = options["clients"], options["profile"]
        if clients < 1:
            raise CommandError("--clients must be at least 1.")
        redis_base = options["redis"].rstrip("/")
        redis_dbs = [options["cache_db"], options["broker_db"]]
        self._flush(redis_base, redis_dbs)
        with tempfile.TemporaryDirectory(prefix="deskops-storm-") as workdir:
            # Groups are groupOfNames entries: no memberof overlay needed.
            directory = ThrowawayDirectory(rundir_parent=workdir, memberof=False)
            try:
                directory.start()
                self._run(directory, Path(workdir), options, clients, profiled, redis_base)
            finally:
                directory.stop()
                self._flush(redis_base, redis_dbs)

    def _run(self, directory, workdir: Path, options, clients, profiled, redis_base) -> None:
        started = time.monotonic()
        users = storm_users(count=clients + profiled + (1 if profiled else 0))
        directory.add_entries(directory_entries(users))
        storm_world_seed(users=users, ready_vms=len(users) + options["spare"])
        self.stdout.write(
            f"seeded {len(users)} directory users and terminals, "
            f"{len(users) + options['spare']} ready VMs in {time.monotonic() - started:.1f} s"
        )
        prometheus_dir = workdir / "prometheus"
        prometheus_dir.mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "DJANGO_DEBUG": "false",
            "DESKOPS_VAR_DIR": str(workdir),
            "DESKOPS_LOG_LEVEL": "WARNING",
            "CACHE_URL": f"{redis_base}/{options['cache_db']}",
            "CELERY_BROKER_URL": f"{redis_base}/{options['broker_db']}",
            "AUTH_LDAP_SERVER_URI": directory.ldap_uri,
            "AUTH_LDAP_USER_SEARCH_BASE": PEOPLE,
            "AUTH_LDAP_GROUP_SEARCH_BASE": GROUPS,
            "PROMETHEUS_MULTIPROC_DIR": str(prometheus_dir),
        }
        storm_bodies = [user.body() for user in users[:clients]]
        bodies_path, answers_path = workdir / "bodies.json", workdir / "answers.json"
        bodies_path.write_text(json.dumps(storm_bodies))

        server = Gunicorn(
            env=env,
            workers=options["workers"],
            worker_class=options["worker_class"],
            threads=options["threads"],
            log_path=workdir / "gunicorn.log",
        )
        server.start()
        try:
            server.warm_up()
            load_before = os.getloadavg()[0]
            client_started = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_cpu_started = server.cpu_seconds()
            subprocess.run(  # noqa: S603 (our own interpreter and module)
                [
                    sys.executable,
                    "-m",
                    "allocation.storm.client",
                    "--port",
                    str(server.port),
                    "--concurrency",
                    str(options["concurrency"]),
                    str(bodies_path),
                    str(answers_path),
                ],  # fmt: skip
                cwd=settings.BASE_DIR,
                check=True,
            )
            client_done = resource.getrusage(resource.RUSAGE_CHILDREN)
            server_cpu_done = server.cpu_seconds()
        finally:
            server.stop()
        # gunicorn's master reaps its workers and is reaped here, so the CPU time of
        # the whole server (warm-up included) is in this process's children now.
        server_done = resource.getrusage(resource.RUSAGE_CHILDREN)

        result = json.loads(answers_path.read_text())
        answers = [Answer(**answer) for answer in result["answers"]]
        stats = storm_stats(answers, result["wall_seconds"])
        given_twice = desktops_given_twice(answers)
        shared = vms_shared_in_database()
        self.stdout.write(
            storm_report(
                stats,
                concurrency=options["concurrency"],
                workers=options["workers"],
                given_twice=given_twice,
                shared_in_database=shared,
            )
        )
        if server_cpu_started is not None and server_cpu_done is not None:
            # The storm alone: worker start-up and warm-up are left out.
            server_cpu, what = server_cpu_done - server_cpu_started, "during the storm"
        else:
            server_cpu, what = _cpu(client_done, server_done), "start-up included"
        self.stdout.write(
            f"CPU per connect:         server {server_cpu / clients * 1000:.1f} ms ({what}),"
            f" load generator {_cpu(client_started, client_done) / clients * 1000:.1f} ms"
            f" ({os.cpu_count()} cores; load average {load_before:.1f} before the storm)"
        )
        self.stdout.write(
            f"server CPU, start-up included: {_cpu(client_done, server_done) / clients * 1000:.1f}"
            " ms per connect"
        )
        if profiled:
            profile_path = workdir / "profile.json"
            profile_path.write_text(json.dumps([user.body() for user in users[clients:]]))
            profile = subprocess.run(  # noqa: S603 (our own interpreter and module)
                [sys.executable, "-m", "allocation.storm.profile", str(profile_path)],
                cwd=settings.BASE_DIR,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            self.stdout.write("\n" + profile.stdout)
        if given_twice or shared:
            raise CommandError("A VM was handed out twice.")

    @staticmethod
    def _flush(base: str, dbs: list[int]) -> None:
        """Empty the benchmark's own Redis databases (throttle counts, queued
        refills), before and after."""
        for db in dbs:
            client = redis.Redis.from_url(f"{base}/{db}")
            try:
                client.flushdb()
            finally:
                client.close()


def _cpu(before, after) -> float:
    """CPU seconds (user and system) spent by reaped children between two samples."""
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
