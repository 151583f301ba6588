#!/usr/bin/env bash
# Benchmarks on the simulated cloud, each in a throwaway SQLite database.
# Usage: scripts/bench.sh refill [--vms N --cap C --boot-seconds T …]
#        scripts/bench.sh swap [--swaps N --boot-seconds T …]
#        scripts/bench.sh failover [--users N --ready R --boot-min S --boot-max S …]
set -euo pipefail
cd "$(dirname "$0")/.."
which="${1:-}"
case "$which" in
  refill | swap | failover) shift ;;
  *) echo "usage: scripts/bench.sh refill|swap|failover [options]" >&2; exit 2 ;;
esac
scripts/bootstrap.sh runtime >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
export DESKOPS_VAR_DIR="$workdir" CELERY_BROKER_URL=memory:// DJANGO_SETTINGS_MODULE=portal.settings
export DESKOPS_LOG_LEVEL=WARNING
unset DATABASE_URL
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py "bench_$which" "$@"
