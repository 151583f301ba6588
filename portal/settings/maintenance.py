"""Scheduled maintenance: the key that encrypts guest credentials, the pace of the
job that advances runs, and the simulated executor of the demo.

Guest passwords and private keys are stored encrypted with a key derived from
`DESKOPS_CREDENTIALS_KEY`. Outside production a development key is used; in
production the variable is required, because a key that ships with the code
protects nothing."""

from django.core.exceptions import ImproperlyConfigured

from .base import PRODUCTION
from .env import env

if PRODUCTION:
    DESKOPS_CREDENTIALS_KEY = env.str("DESKOPS_CREDENTIALS_KEY", default="")
    if len(DESKOPS_CREDENTIALS_KEY) < 32:
        raise ImproperlyConfigured(
            "DESKOPS_CREDENTIALS_KEY must be set (32 characters or more) when "
            "DESKOPS_PRODUCTION=true."
        )
else:
    DESKOPS_CREDENTIALS_KEY = env.str(
        "DESKOPS_CREDENTIALS_KEY", default="insecure-development-credentials-key-do-not-use"
    )
# Earlier keys, comma-separated: credentials encrypted with them still decrypt, and
# are encrypted with the current key the next time they are saved.
DESKOPS_CREDENTIALS_OLD_KEYS = env.list("DESKOPS_CREDENTIALS_OLD_KEYS", default=[])

# Seconds between two passes of the job that advances maintenance runs.
MAINTENANCE_ADVANCE_INTERVAL = env.int("MAINTENANCE_ADVANCE_INTERVAL", default=5)
# The simulated guest executor: share of commands that fail, and how long each takes.
MAINTENANCE_SIM_FAILURE_RATE = env.float("MAINTENANCE_SIM_FAILURE_RATE", default=0.0)
MAINTENANCE_SIM_SECONDS = env.float("MAINTENANCE_SIM_SECONDS", default=2.0)
