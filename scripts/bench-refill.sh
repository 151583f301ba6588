#!/usr/bin/env bash
# Refill benchmark on the simulated cloud, in a throwaway SQLite database.
# Arguments go to `manage.py bench_refill` (--vms, --cap, --boot-seconds, --hosts …).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh runtime >/dev/null
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
export DESKOPS_VAR_DIR="$workdir" CELERY_BROKER_URL=memory:// DJANGO_SETTINGS_MODULE=portal.settings
export DESKOPS_LOG_LEVEL=WARNING
unset DATABASE_URL
.venv/bin/python manage.py migrate --noinput -v0
.venv/bin/python manage.py bench_refill "$@"
