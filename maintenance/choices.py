from django.db import models


class MaintenanceAction(models.TextChoices):
    """What a maintenance task does to each VM. `script` and `package` run inside
    the guest (through an executor and its credential); the others are cloud
    operations through the region's driver."""

    SCRIPT = "script", "Run a script"
    PACKAGE = "package", "Install a package"
    REBOOT = "reboot", "Reboot"
    REBUILD = "rebuild", "Roll out a new image"
    POWER_OFF = "power_off", "Power off"


GUEST_ACTIONS = (MaintenanceAction.SCRIPT, MaintenanceAction.PACKAGE)


class ScheduleKind(models.TextChoices):
    MANUAL = "manual", "Only when started by hand"
    ONCE = "once", "Once, at a date and time"
    CRON = "cron", "Repeatedly (cron)"


class InUsePolicy(models.TextChoices):
    """What happens to a VM someone is working on (an open desktop session)."""

    SKIP = "skip", "Skip it"
    WAIT = "wait", "Wait for logoff until the window ends"
    FORCE = "force", "Notify the user, then go ahead"


class RunStatus(models.TextChoices):
    """Where a run is. `waiting` and `running` are active (the advance job works
    on them); the others are final, except that retrying a halted or failed run
    makes it run again."""

    WAITING = "waiting", "Waiting for its window"
    RUNNING = "running", "Running"
    HALTED = "halted", "Halted (too many failures)"
    CANCELLED = "cancelled", "Cancelled"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Finished with failures"
    ROLLED_BACK = "rolled_back", "Rolled back"


ACTIVE_RUN_STATUSES = (RunStatus.WAITING, RunStatus.RUNNING)


class ItemStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"


FINISHED_ITEM_STATUSES = (ItemStatus.SUCCEEDED, ItemStatus.FAILED, ItemStatus.SKIPPED)


class ItemPhase(models.TextChoices):
    """What an item is waiting for. A running item: a worker to pick it up, a
    guest command (its Celery task reports back), a cloud operation on the server
    (polled through the driver), or the pool's own recycling of an idle VM
    (followed through the VM's state). A pending item: its user to log off, or
    the end of the notice its user was given."""

    QUEUED = "queued", "Queued for a worker"
    GUEST = "guest", "Running in the guest"
    CLOUD = "cloud", "Cloud operation"
    RECYCLE = "recycle", "Rebuilt by the pool"
    LOGOFF = "logoff", "Waiting for logoff"
    NOTICE = "notice", "User notified"


class GuestTransport(models.TextChoices):
    SIMULATED = "simulated", "Simulated (demo)"
    SSH = "ssh", "SSH"
    WINRM = "winrm", "WinRM"


class WinRMAuth(models.TextChoices):
    NTLM = "ntlm", "NTLM"
    KERBEROS = "kerberos", "Kerberos"
    BASIC = "basic", "Basic (HTTPS only in production)"
    CREDSSP = "credssp", "CredSSP"
