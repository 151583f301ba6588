"""Add the sample maintenance task to the demo (after `seed_demo`)."""

from django.core.management.base import BaseCommand

from maintenance.demo import seed_maintenance_demo


class Command(BaseCommand):
    help = "Create the demo's sample maintenance task and its simulated guest credential."

    def handle(self, *args, **options):
        task = seed_maintenance_demo()
        if task is None:
            self.stdout.write("No demo pool yet: run seed_demo first.")
        else:
            self.stdout.write(f"Maintenance task {task.name!r} is in place.")
