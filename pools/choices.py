from django.db import models


class VMState(models.TextChoices):
    """Where a VM is in its life. `requested` and `building` count as booting;
    `ready` VMs are idle in the pool; `in_use` VMs are handed to a user;
    `recycling` VMs were released and are being reset to their image before anyone
    else gets them; `quarantined` VMs were swapped out of a user's hands and are
    kept, untouched, for investigation until they are deleted."""

    REQUESTED = "requested", "Requested"
    BUILDING = "building", "Booting"
    READY = "ready", "Ready"
    IN_USE = "in_use", "In use"
    RECYCLING = "recycling", "Recycling"
    QUARANTINED = "quarantined", "Quarantined"
    ERROR = "error", "Error"
    LOST = "lost", "Lost"
    DELETED = "deleted", "Deleted"


# A recycling VM is being rebuilt: it counts as booting, against the boot caps too.
BOOTING_STATES = (VMState.REQUESTED, VMState.BUILDING, VMState.RECYCLING)
# States in which a VM holds (or may soon hold) a server in the cloud.
ALIVE_STATES = (
    VMState.REQUESTED,
    VMState.BUILDING,
    VMState.READY,
    VMState.IN_USE,
    VMState.RECYCLING,
)
