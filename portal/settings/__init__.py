"""DeskOps settings: one base module that reads the environment, plus one small
module per integration (Celery, Channels, LDAP, cloud). Every variable is listed
in the README's configuration table."""

from .access import *  # noqa: F403
from .base import *  # noqa: F403
from .celery import *  # noqa: F403
from .channels import *  # noqa: F403
from .cloud import *  # noqa: F403
from .email import *  # noqa: F403
from .ldap import *  # noqa: F403
from .maintenance import *  # noqa: F403
from .monitoring import *  # noqa: F403
