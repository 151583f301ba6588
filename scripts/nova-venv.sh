#!/usr/bin/env bash
# Builds .venv-nova, the virtualenv of the real-Nova test harness (tests/nova/serve.py).
#
# It is separate from .venv because Nova pins its own versions of many libraries
# (oslo.*, SQLAlchemy, eventlet) that the project must not be tied to. The pinned
# list is tests/nova/requirements.txt; a stamp of it in the virtualenv makes a
# second run a no-op until the list changes.
set -euo pipefail
cd "$(dirname "$0")/.."

python="${PYTHON:-python3}"
venv=.venv-nova
requirements=tests/nova/requirements.txt
stamp="$venv/.installed"
wanted=$( (cat "$requirements"; "$python" --version) | sha256sum | cut -d' ' -f1)

if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

started=$SECONDS
echo "==> Building the Nova test virtualenv in $venv"
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
rm -f "$stamp"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$requirements"
# A wheel that installs but cannot import is caught here, not in the middle of a
# test run.
OS_NOVA_DISABLE_EVENTLET_PATCHING=1 "$venv/bin/python" -c \
  "import nova.tests.functional.integrated_helpers, placement.deploy"
echo "$wanted" >"$stamp"
echo "==> $venv ready in $((SECONDS - started)) s"
