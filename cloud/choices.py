from django.db import models


class DriverKind(models.TextChoices):
    SIMULATED = "simulated", "Simulated cloud"
    OPENSTACK = "openstack", "OpenStack"


class HostState(models.TextChoices):
    UP = "up", "Up"
    DOWN = "down", "Down"
    DISABLED = "disabled", "Disabled"


class ServerStatus(models.TextChoices):
    """Nova's server status vocabulary, which the simulated cloud speaks too."""

    BUILD = "BUILD", "Building"
    ACTIVE = "ACTIVE", "Active"
    SHUTOFF = "SHUTOFF", "Shut off"
    REBOOT = "REBOOT", "Rebooting"
    REBUILD = "REBUILD", "Rebuilding"
    ERROR = "ERROR", "Error"
