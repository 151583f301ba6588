"""Directory logins through django-auth-ldap, switched on by `AUTH_LDAP_SERVER_URI`.

Without it, Django's own users and groups serve (the embedded default). With it,
users are found by a search under `AUTH_LDAP_USER_SEARCH_BASE`, their password is
checked by binding as them, and their groups are mirrored into Django groups so
allocator rules can match on them. Groups come either from groupOfNames entries
that list the user as a `member` (OpenLDAP style) or from the user's own
`memberOf` attribute (Active Directory style), per `AUTH_LDAP_GROUP_TYPE`.

Django's own `ModelBackend` always stays after the LDAP backend, so a local
break-glass account still logs in when the directory is down.

`directory_settings()` builds every setting from plain values; the environment
below and the test suite both go through it, so what is tested is what runs."""

from django.core.exceptions import ImproperlyConfigured

from .env import env

_GROUP_OF_NAMES = "groupOfNames"
_MEMBER_OF = "memberOf"
_GROUP_TYPES = (_GROUP_OF_NAMES, _MEMBER_OF)

_LDAP_BACKEND = "django_auth_ldap.backend.LDAPBackend"
_MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
# Authenticates no one; gives administrators every model permission (portal/roles.py).
_ROLE_BACKEND = "portal.roles.RoleBackend"


def _connection_options(*, timeout: float, ca_cert_file: str) -> dict:
    import ldap

    options = {
        ldap.OPT_NETWORK_TIMEOUT: timeout,
        ldap.OPT_TIMEOUT: timeout,
        # Active Directory answers searches with referrals to other partitions;
        # chasing them binds anonymously and fails, so they are left alone.
        ldap.OPT_REFERRALS: 0,
    }
    if ca_cert_file:
        options[ldap.OPT_X_TLS_CACERTFILE] = ca_cert_file
        options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND
        # TLS options take effect on a connection only once a new TLS context is
        # made, so this has to come last (the options are applied in order).
        options[ldap.OPT_X_TLS_NEWCTX] = 0
    return options


def _group_settings(*, group_type: str, group_search_base: str) -> dict:
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

    if group_type == _MEMBER_OF:
        from allocation.directory import MemberOfGroupType

        # The user entry names its groups; the search base only narrows which of
        # them are mirrored (everything, when it is empty). Nothing is searched.
        return {
            "AUTH_LDAP_GROUP_TYPE": MemberOfGroupType(),
            "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(group_search_base, ldap.SCOPE_SUBTREE),
            "AUTH_LDAP_MIRROR_GROUPS": True,
        }
    if not group_search_base:
        # groupOfNames needs a place to search; without one, groups are not read
        # from the directory and stay as operators set them in Django.
        return {"AUTH_LDAP_MIRROR_GROUPS": False}
    return {
        "AUTH_LDAP_GROUP_TYPE": GroupOfNamesType(),
        # Only the name is read: by default the search would return every group
        # with all its `member` values, thousands of DNs for a call-center group,
        # sent and decoded at every login.
        "AUTH_LDAP_GROUP_SEARCH": LDAPSearch(
            group_search_base, ldap.SCOPE_SUBTREE, "(objectClass=groupOfNames)", attrlist=["cn"]
        ),
        "AUTH_LDAP_MIRROR_GROUPS": True,
    }


def directory_settings(
    *,
    server_uri: str,
    user_search_base: str,
    user_filter: str = "(uid=%(user)s)",
    group_type: str = _GROUP_OF_NAMES,
    group_search_base: str = "",
    bind_dn: str = "",
    bind_password: str = "",
    start_tls: bool = False,
    ca_cert_file: str = "",
    timeout: float = 5.0,
) -> dict:
    """Every Django setting that directory logins need, by name."""
    import ldap
    from django_auth_ldap.config import LDAPSearch

    if not user_search_base:
        raise ImproperlyConfigured("AUTH_LDAP_USER_SEARCH_BASE is required with LDAP logins.")
    if group_type not in _GROUP_TYPES:
        raise ImproperlyConfigured(
            f"AUTH_LDAP_GROUP_TYPE must be one of {', '.join(_GROUP_TYPES)}, not {group_type!r}."
        )
    # memberOf is an operational attribute on OpenLDAP: it is only returned when
    # asked for by name (Active Directory returns it either way).
    user_attrs = ["*", "memberOf"] if group_type == _MEMBER_OF else None
    return {
        "AUTHENTICATION_BACKENDS": [_LDAP_BACKEND, _MODEL_BACKEND, _ROLE_BACKEND],
        "AUTH_LDAP_SERVER_URI": server_uri,
        "AUTH_LDAP_BIND_DN": bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": bind_password,
        # Without a search account the lookups after the password check (groups)
        # would run anonymously, which Active Directory refuses and OpenLDAP ACLs
        # usually restrict; staying bound as the user reads what the user may
        # read. A search account is what operators granted read rights to, so with
        # one the connection goes back to it.
        "AUTH_LDAP_BIND_AS_AUTHENTICATING_USER": not bind_dn,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_USER_SEARCH": LDAPSearch(
            user_search_base, ldap.SCOPE_SUBTREE, user_filter, attrlist=user_attrs
        ),
        "AUTH_LDAP_USER_ATTRLIST": user_attrs,
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        # A known user's fields are refreshed by allocation.directory, which saves
        # only what changed, instead of the whole row at every login.
        "AUTH_LDAP_ALWAYS_UPDATE_USER": False,
        "AUTH_LDAP_CONNECTION_OPTIONS": _connection_options(
            timeout=timeout, ca_cert_file=ca_cert_file
        ),
        **_group_settings(group_type=group_type, group_search_base=group_search_base),
    }


AUTH_LDAP_SERVER_URI = env.str("AUTH_LDAP_SERVER_URI", default="")

AUTHENTICATION_BACKENDS = [_MODEL_BACKEND, _ROLE_BACKEND]

if AUTH_LDAP_SERVER_URI:
    # Each name the builder returns becomes a setting of this module.
    globals().update(
        directory_settings(
            server_uri=AUTH_LDAP_SERVER_URI,
            user_search_base=env.str("AUTH_LDAP_USER_SEARCH_BASE"),
            user_filter=env.str("AUTH_LDAP_USER_FILTER", default="(uid=%(user)s)"),
            group_type=env.str("AUTH_LDAP_GROUP_TYPE", default=_GROUP_OF_NAMES),
            group_search_base=env.str("AUTH_LDAP_GROUP_SEARCH_BASE", default=""),
            bind_dn=env.str("AUTH_LDAP_BIND_DN", default=""),
            bind_password=env.str("AUTH_LDAP_BIND_PASSWORD", default=""),
            start_tls=env.bool("AUTH_LDAP_START_TLS", default=False),
            ca_cert_file=env.str("AUTH_LDAP_CA_CERT_FILE", default=""),
            timeout=env.float("AUTH_LDAP_TIMEOUT", default=5.0),
        )
    )
