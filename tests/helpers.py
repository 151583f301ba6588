"""Helpers shared by tests of different apps."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTINGS_PREFIXES = ("DJANGO_", "DESKOPS_", "DATABASE_", "CELERY_", "CHANNELS_", "AUTH_LDAP_")


def settings_in_fresh_interpreter(
    printed: str, *, imports: str = "", **env: str
) -> subprocess.CompletedProcess:
    """Load DeskOps's settings in a new Python process whose environment holds no
    DeskOps variable but `env`, and print `printed` (an expression over `s`, the
    settings). Settings are read at import, so this is how to test them."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    environment.update(env, DJANGO_SETTINGS_MODULE="portal.settings")
    code = f"{imports}\nfrom django.conf import settings as s\nprint({printed})"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environment, capture_output=True, text=True
    )
