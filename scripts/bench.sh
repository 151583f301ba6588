#!/usr/bin/env bash
# Benchmarks on the simulated cloud, each in a throwaway SQLite database.
# Usage: scripts/bench.sh refill [--vms N --cap C --boot-seconds T …]
#        scripts/bench.sh swap [--swaps N --boot-seconds T …]
#        scripts/bench.sh failover [--users N --ready R --boot-min S --boot-max S …]
#        scripts/bench.sh pages [--vms N --hosts H --terminals T --repeat R …]
#        scripts/bench.sh storm [--clients N --concurrency C --workers W --profile P …]
#        scripts/bench.sh scale [--connects N --repeat R --terminals T --vms V --no-fail …]
# pages times the staff list pages against a large world, with DEBUG off. To run
# it on PostgreSQL, point BENCH_DATABASE_URL at an empty database made for it
# (createdb deskops_bench_pages); it is left as the benchmark filled it.
# scale seeds 100,000 terminals and 50,000 VMs (seed_scale) and checks the connect,
# the ops API lists and the dashboard against their budgets; like pages, with DEBUG
# off, on BENCH_DATABASE_URL if set (a database seed_scale filled is measured as is).
# storm needs PostgreSQL (127.0.0.1, user postgres), slapd and Redis: it runs in
# BENCH_DATABASE_URL if set, else in a throwaway database it creates and drops.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-}"
case "$which" in
  refill | swap | failover | pages | storm | scale) shift ;;
  *) echo "usage: scripts/bench.sh refill|swap|failover|pages|storm|scale [options]" >&2; exit 2 ;;
esac
scripts/bootstrap.sh runtime >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
export DESKOPS_VAR_DIR="$workdir" CELERY_BROKER_URL=memory:// DJANGO_SETTINGS_MODULE=portal.settings
export DESKOPS_LOG_LEVEL=WARNING
unset DATABASE_URL
if [ "$which" = pages ] || [ "$which" = scale ]; then
  export DJANGO_DEBUG=false
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then export DATABASE_URL="$BENCH_DATABASE_URL"; fi
fi
if [ "$which" = storm ]; then
  export DJANGO_DEBUG=false
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then
    export DATABASE_URL="$BENCH_DATABASE_URL"
  else
    stormdb="deskops_storm_$$"
    createdb -h 127.0.0.1 -U postgres "$stormdb"
    trap 'dropdb -h 127.0.0.1 -U postgres --if-exists "$stormdb"; rm -rf "$workdir"' EXIT
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$stormdb"
  fi
fi
.venv/bin/python manage.py migrate --noinput -v0
command="bench_$which"
[ "$which" = storm ] && command=bench_login_storm
.venv/bin/python manage.py "$command" "$@"
