#!/usr/bin/env bash
# Benchmarks on the simulated cloud, each in a throwaway SQLite database.
# Usage: scripts/bench.sh refill [--vms N --cap C --boot-seconds T …]
#        scripts/bench.sh swap [--swaps N --boot-seconds T …]
#        scripts/bench.sh failover [--users N --ready R --boot-min S --boot-max S …]
#        scripts/bench.sh pages [--vms N --hosts H --terminals T --repeat R …]
# pages times the staff list pages against a large world, with DEBUG off. To run
# it on PostgreSQL, point BENCH_DATABASE_URL at an empty database made for it
# (createdb deskops_bench_pages); it is left as the benchmark filled it.
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-}"
case "$which" in
  refill | swap | failover | pages) shift ;;
  *) echo "usage: scripts/bench.sh refill|swap|failover|pages [options]" >&2; exit 2 ;;
esac
scripts/bootstrap.sh runtime >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
export DESKOPS_VAR_DIR="$workdir" CELERY_BROKER_URL=memory:// DJANGO_SETTINGS_MODULE=portal.settings
export DESKOPS_LOG_LEVEL=WARNING
unset DATABASE_URL
if [ "$which" = pages ]; then
  export DJANGO_DEBUG=false
  if [ -n "${BENCH_DATABASE_URL:-}" ]; then export DATABASE_URL="$BENCH_DATABASE_URL"; fi
fi
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py "bench_$which" "$@"
