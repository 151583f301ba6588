"""Logins against the user directory (OpenLDAP or Active Directory) and what the
directory tells allocation about a user.

django-auth-ldap does the directory work. This module adds what a connection
broker needs on top of it:

- An unreachable directory is told apart from a wrong password. django-auth-ldap
  catches every LDAP error itself and answers "not authenticated", so during an
  outage a user who typed the right password would be told it is wrong and stop
  trying. The backend announces each error on its `ldap_error` signal; a login
  listens to it and turns an outage into a 503 that thin clients retry.
- The user's DN is kept in `DirectoryProfile` at each directory login, so allocator
  rules can match on the OU path (site, department) the user sits in.
- Groups in Active Directory style (the user's own `memberOf`), which
  django-auth-ldap has no group type for.

The settings import this module for `MemberOfGroupType` before the apps are
loaded, so nothing here may import models at import time."""

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING

import ldap
import ldap.dn
from django.contrib.auth import authenticate
from django.utils import timezone
from django_auth_ldap.backend import ldap_error
from django_auth_ldap.config import LDAPGroupType

from allocation.matching import dn_in_subtree, normalize_dn
from portal.errors import ServiceUnavailable

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser

logger = logging.getLogger(__name__)

# Seconds a thin client is told to wait before it tries again while the directory
# is down; an outage rarely ends sooner, and retrying faster only adds load.
DIRECTORY_RETRY_AFTER = 10

# LDAP errors that mean the server could not be reached, refused to serve, or did
# not answer in time: the password could not be checked at all.
UNREACHABLE = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT, ldap.UNAVAILABLE, ldap.BUSY)


class DirectoryUnavailable(ServiceUnavailable):
    code = "directory_unavailable"
    default_detail = (
        "The user directory is not answering, so the login cannot be checked; try again shortly."
    )


# The LDAP errors of the login running in this context, or None outside a login.
# A context variable rather than a shared list: every thread (and asyncio task) has
# its own value, so two logins at once never see each other's errors.
_login_errors: ContextVar[list[Exception] | None] = ContextVar(
    "directory_login_errors", default=None
)


def _note_ldap_error(sender, *, context: str, exception: Exception, **kwargs) -> None:
    """django-auth-ldap's `ldap_error` receiver: note the error for the login in
    progress in this context; outside a login there is nothing to note."""
    errors = _login_errors.get()
    if errors is not None:
        logger.debug("LDAP error while %s: %s", context, exception)
        errors.append(exception)


# Connected once, for good: the context variable is what limits the listening to
# the duration of a login, without adding and removing receivers (which every
# thread shares) on each call.
ldap_error.connect(_note_ldap_error, dispatch_uid="allocation.directory.note_ldap_error")


def directory_authenticate(request, *, username: str, password: str) -> "AbstractBaseUser | None":
    """The active user these credentials belong to, or None when they are wrong.

    Every configured backend is asked in turn: the directory first, then Django's
    own users. When the directory could not be reached during this login and no
    other backend accepted it, the answer is `DirectoryUnavailable` rather than
    None: the password was never checked, so the caller must not say it is wrong.
    A local account (the break-glass admin) still logs in during an outage."""
    user, errors = _authenticate_noting_errors(request, username=username, password=password)
    if user is not None:
        if not user.is_active:
            return None
        if hasattr(user, "ldap_user"):
            _refresh_user_fields(user=user)
            _remember_dn(user=user)
            user.directory_groups = _mirrored_groups(user=user)
        return user
    unreachable = [error for error in errors if isinstance(error, UNREACHABLE)]
    if unreachable:
        logger.warning("directory unreachable during the login of %s: %s", username, unreachable[0])
        raise DirectoryUnavailable(retry_after=DIRECTORY_RETRY_AFTER)
    return None


def _authenticate_noting_errors(
    request, *, username: str, password: str
) -> tuple["AbstractBaseUser | None", list[Exception]]:
    errors: list[Exception] = []
    token = _login_errors.set(errors)
    try:
        user = authenticate(request, username=username, password=password)
    finally:
        _login_errors.reset(token)
    return user, errors


def _refresh_user_fields(*, user: "AbstractBaseUser") -> None:
    """Copy the names and mail the directory has just sent onto the user, saving
    only the fields that changed.

    django-auth-ldap can do this itself (`AUTH_LDAP_ALWAYS_UPDATE_USER`), but it
    then saves the whole user row at every login, changed or not; the settings turn
    that off (it still fills in a user it creates) and this takes its place."""
    attrs = user.ldap_user.attrs or {}  # case-insensitive; None if unreadable
    changed = []
    for field, attribute in user.ldap_user.settings.USER_ATTR_MAP.items():
        values = attrs.get(attribute)
        if not values:  # as django-auth-ldap does: a missing value changes nothing
            continue
        if getattr(user, field) != values[0]:
            setattr(user, field, values[0])
            changed.append(field)
    if changed:
        user.save(update_fields=changed)


def _mirrored_groups(*, user: "AbstractBaseUser") -> frozenset[str] | None:
    """The names of the user's Django groups right after this login, when the login
    has just mirrored every directory group onto them (`AUTH_LDAP_MIRROR_GROUPS`
    true, no exceptions): then they are exactly the directory's group names, which
    django-auth-ldap has already read, and allocator matching need not read them
    back. None when mirroring is off or partial: the database has the answer."""
    ldap_settings = user.ldap_user.settings
    if ldap_settings.MIRROR_GROUPS is not True or ldap_settings.MIRROR_GROUPS_EXCEPT:
        return None
    # As django-auth-ldap mirrors them: an empty name makes no group.
    return frozenset(filter(None, user.ldap_user.group_names))


def _remember_dn(*, user: "AbstractBaseUser") -> None:
    """Keep the DN the directory has just authenticated the user as.

    It is read from `user.ldap_user`, which django-auth-ldap attaches to the user it
    returns, once `authenticate` is over, rather than in a `populate_user` receiver:
    that signal fires before a new user is first saved (there is no row to link a
    profile to yet) and also when a user is populated without logging in. Here the
    login has succeeded, the user is saved, and the DN is already loaded, so no
    further LDAP request is made.

    Only a new or moved entry is written: at a shift start thousands of users log
    in with the DN they had yesterday, and rewriting each row would cost every
    login a locked read, an update and a commit for nothing."""
    from allocation.models import DirectoryProfile  # not at import time: see the module

    dn = user.ldap_user.dn
    if not dn:
        return
    known = DirectoryProfile.objects.filter(user=user).values_list("dn", flat=True).first()
    if known == dn:
        return
    if known is None:
        # Two first logins of the same user at once both find no row; the second
        # insert then updates what the first one wrote.
        DirectoryProfile.objects.update_or_create(user=user, defaults={"dn": dn})
    else:
        DirectoryProfile.objects.filter(user=user).update(dn=dn, synced_at=timezone.now())
    logger.debug("directory entry of %s is %s", user.get_username(), dn)


class MemberOfGroupType(LDAPGroupType):
    """Groups as Active Directory keeps them: the user entry's own `memberOf`
    attribute lists the DNs of their groups, and a group's name is the CN of its
    DN. No group is searched, so the search account needs no read access to the
    groups and a login costs no extra query.

    When the group search has a base, only groups below it count, so the many
    groups a directory account tends to be in do not all become Django groups."""

    def __init__(self) -> None:
        super().__init__(name_attr="cn")

    def user_groups(self, ldap_user, group_search) -> list[tuple[str, dict]]:
        return [
            # django-auth-ldap compares group DNs in lower case; the name keeps
            # the directory's spelling.
            (dn.lower(), {"cn": [name]})
            for dn in _member_of(ldap_user)
            if (name := _group_cn(dn)) and _below(dn, base=group_search.base_dn)
        ]

    def is_member(self, ldap_user, group_dn: str) -> bool:
        wanted = normalize_dn(group_dn)
        return any(normalize_dn(dn) == wanted for dn in _member_of(ldap_user))


def _member_of(ldap_user) -> list[str]:
    # `attrs` is case-insensitive; it is None when the entry could not be read.
    return list((ldap_user.attrs or {}).get("memberOf", []))


def _group_cn(dn: str) -> str | None:
    """The CN that names a group (from the first RDN of its DN), or None."""
    try:
        rdn = ldap.dn.str2dn(dn)[0]
    except (ldap.DECODING_ERROR, IndexError):
        return None
    return next((value for attribute, value, _ in rdn if attribute.lower() == "cn"), None)


def _below(dn: str, *, base: str) -> bool:
    return not base or dn_in_subtree(dn, base)
