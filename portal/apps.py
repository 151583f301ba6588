from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from django.contrib import admin

        from . import auth  # noqa: F401  (connects the login and logout audit)
        from .roles import Role, has_role

        # The Django admin is the administrators' tool, whatever `is_staff` says:
        # directory administrators get in through their role.
        admin.site.has_permission = lambda request: has_role(request.user, Role.ADMINISTRATOR)
