"""The portal's four roles and how every page and ops API endpoint checks them.

Roles are ordered, each including the ones below it:

- viewer: reads every page but the audit trail and stored credentials;
- help desk: also finds users and acts on their desktops (swap, reboot, release);
- operator: also runs the cloud: pools, hosts, schedules, maintenance, alerts,
  incidents, faults, terminals;
- administrator: also edits allocators, regions, credentials and the scheduling
  policy, reads the audit trail and uses the Django admin.

A page declares the role it needs to read (GET, HEAD) and the role it needs to
change something (any other method) with `role_required`; an API view does the
same with `read_role` / `write_role` attributes read by `RolePermission`."""

from enum import IntEnum
from functools import wraps

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission


class Role(IntEnum):
    VIEWER = 1
    HELPDESK = 2
    OPERATOR = 3
    ADMINISTRATOR = 4

    @property
    def label(self) -> str:
        return {1: "viewer", 2: "help desk", 3: "operator", 4: "administrator"}[self.value]


_ROLE_BY_SETTING = {
    "viewer": Role.VIEWER,
    "helpdesk": Role.HELPDESK,
    "operator": Role.OPERATOR,
    "administrator": Role.ADMINISTRATOR,
}
_CACHE_ATTRIBUTE = "_deskops_role"


def role_for_groups(group_names) -> Role | None:
    """The highest role any of these group names grants, or None."""
    names = set(group_names)
    granted = [
        role
        for key, role in _ROLE_BY_SETTING.items()
        if names.intersection(settings.PORTAL_ROLE_GROUPS.get(key, ()))
    ]
    return max(granted) if granted else None


def user_role(user) -> Role | None:
    """The user's role, or None for someone with no access to the portal (a
    thin-client user, say). Read once per request and kept on the user object."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if not hasattr(user, _CACHE_ATTRIBUTE):
        if user.is_superuser:
            role = Role.ADMINISTRATOR
        else:
            role = role_for_groups(user.groups.values_list("name", flat=True))
        setattr(user, _CACHE_ATTRIBUTE, role)
    return getattr(user, _CACHE_ATTRIBUTE)


def has_role(user, needed: Role) -> bool:
    role = user_role(user)
    return role is not None and role >= needed


def needed_role(method: str, *, read: Role, write: Role) -> Role:
    return read if method in SAFE_METHODS else write


def role_required(read: Role, write: Role | None = None):
    """Guard a page: anonymous visitors go to the login page; a signed-in user
    below the role gets 403. `write` (default: same as `read`) applies to every
    method but GET, HEAD and OPTIONS. The roles stay on the view for the role
    matrix test and the page index."""
    write = write or read

    def decorate(view):
        @wraps(view)
        def guarded(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not has_role(request.user, needed_role(request.method, read=read, write=write)):
                raise PermissionDenied("Your role does not allow this.")
            return view(request, *args, **kwargs)

        guarded.read_role = read
        guarded.write_role = write
        return guarded

    return decorate


class RolePermission(BasePermission):
    """The ops API's default permission: `view.read_role` (default viewer) for
    safe methods, `view.write_role` (default administrator) for the others."""

    message = "Your role does not allow this."

    def has_permission(self, request, view) -> bool:
        read = getattr(view, "read_role", Role.VIEWER)
        write = getattr(view, "write_role", Role.ADMINISTRATOR)
        return has_role(request.user, needed_role(request.method, read=read, write=write))


class RoleBackend:
    """An authentication backend that authenticates no one but gives
    administrators every model permission, so a directory administrator can use
    the Django admin without per-model grants."""

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None) -> bool:
        return has_role(user_obj, Role.ADMINISTRATOR)

    def has_module_perms(self, user_obj, app_label) -> bool:
        return has_role(user_obj, Role.ADMINISTRATOR)
