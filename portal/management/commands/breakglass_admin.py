"""Create or reset the local break-glass administrator.

The portal's staff normally log in through the directory; this account is local
to DeskOps (Django's own password), a superuser, and so still logs in when the
directory is down. Its new password is generated, printed once and never stored
in clear. Every reset lands in the audit trail."""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from portal.services import audit_record


class Command(BaseCommand):
    help = "Create or reset the local break-glass administrator and print its new password."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="breakglass")

    @transaction.atomic
    def handle(self, *args, username: str, **options):
        password = secrets.token_urlsafe(18)
        user, created = get_user_model().objects.get_or_create(username=username)
        user.is_superuser = True
        user.is_staff = True
        user.is_active = True
        user.set_password(password)
        user.save()
        audit_record(
            action="breakglass.create" if created else "breakglass.reset",
            obj=user,
            actor="manage.py",
        )
        self.stdout.write(
            f"{'Created' if created else 'Reset'} the local administrator {username}."
        )
        self.stdout.write(f"Password (shown once): {password}")
