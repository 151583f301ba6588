#!/usr/bin/env bash
# One command from a fresh clone to a running portal: installs everything,
# migrates the SQLite database, seeds the demo and starts the web server (ASGI),
# a Celery worker and Celery beat in the foreground. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh runtime
export PATH="$PWD/.venv/bin:$PATH"
export DESKOPS_BIND="${DESKOPS_BIND:-127.0.0.1}"
export DESKOPS_PORT="${DESKOPS_PORT:-8000}"
# The login probe logs the demo's probe account (seeded by seed_demo) in through
# the thin-client API every PROBE_INTERVAL seconds. Demo defaults only: a real
# deployment sets its own account and terminal, or none. honcho hands the exported
# environment on to the web server, the worker and beat.
probe_host="$DESKOPS_BIND"
case "$probe_host" in 0.0.0.0 | :: | "[::]") probe_host=127.0.0.1 ;; esac
: "${PROBE_URL:=http://$probe_host:$DESKOPS_PORT}"
: "${PROBE_USERNAME:=probe}"
: "${PROBE_PASSWORD:=deskops-probe}"
: "${PROBE_TERMINAL:=TC-PROBE-01}"
export PROBE_URL PROBE_USERNAME PROBE_PASSWORD PROBE_TERMINAL

python manage.py migrate --noinput
python manage.py seed_demo --prewarm

cat <<INFO

  DeskOps is starting at  http://$DESKOPS_BIND:$DESKOPS_PORT/
  Staff login:            admin / deskops-admin (administrator); olga (operator), hugo (help desk),
                          vera (viewer), password deskops-demo
  Demo users (thin client): alice, bob, carol, dave (agents), erin, frank (VIP agents),
                          grace, heidi (supervisors); password deskops-demo
  Demo terminals:         TC-SH-001 … TC-SH-005 (Shanghai), TC-HF-001 … TC-HF-005 (Hefei)
  Login probe:            $PROBE_USERNAME at $PROBE_TERMINAL every ${PROBE_INTERVAL:-60} s, see /probe/
  Try:  curl -s -X POST http://$DESKOPS_BIND:$DESKOPS_PORT/api/thin-client/v1/connect \\
          -H 'Content-Type: application/json' \\
          -d '{"username": "alice", "password": "deskops-demo", "terminal": "TC-SH-001"}'

INFO
exec honcho --procfile Procfile start
