from django.db import models


class BindingPolicy(models.TextChoices):
    """What a desktop is bound to once handed out. A user, seat or terminal binding
    brings the same VM back at the next login; a floating desktop is bound only for
    the session."""

    USER = "user", "By user"
    SEAT = "seat", "By seat"
    TERMINAL = "terminal", "By terminal"
    FLOATING = "floating", "Floating"


class TerminalStatus(models.TextChoices):
    PENDING = "pending", "Pending enrollment"
    ENROLLED = "enrolled", "Enrolled"
