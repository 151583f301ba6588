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

python manage.py migrate --noinput
python manage.py seed_demo --prewarm

cat <<INFO

  DeskOps is starting at  http://$DESKOPS_BIND:$DESKOPS_PORT/
  Staff login:            admin / deskops-admin
  Demo users (thin client): alice, bob, carol, dave (agents), erin, frank (VIP agents),
                          grace, heidi (supervisors); password deskops-demo
  Demo terminals:         TC-SH-001 … TC-SH-005 (Shanghai), TC-HF-001 … TC-HF-005 (Hefei)
  Try:  curl -s -X POST http://$DESKOPS_BIND:$DESKOPS_PORT/api/thin-client/v1/connect \\
          -H 'Content-Type: application/json' \\
          -d '{"username": "alice", "password": "deskops-demo", "terminal": "TC-SH-001"}'

INFO
exec honcho --procfile Procfile start
