"""Directory logins through django-auth-ldap, switched on by `AUTH_LDAP_SERVER_URI`.

Without it, Django's own users and groups serve (the embedded default). With it,
users are found by a search under `AUTH_LDAP_USER_SEARCH_BASE`, bound as themselves,
and their groups (groupOfNames under `AUTH_LDAP_GROUP_SEARCH_BASE`) are mirrored
into Django groups, so allocator rules can match on them."""

from .env import env

AUTH_LDAP_SERVER_URI = env.str("AUTH_LDAP_SERVER_URI", default="")

AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]

if AUTH_LDAP_SERVER_URI:
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch

    AUTH_LDAP_BIND_DN = env.str("AUTH_LDAP_BIND_DN", default="")
    AUTH_LDAP_BIND_PASSWORD = env.str("AUTH_LDAP_BIND_PASSWORD", default="")
    AUTH_LDAP_USER_SEARCH = LDAPSearch(
        env.str("AUTH_LDAP_USER_SEARCH_BASE"),
        ldap.SCOPE_SUBTREE,
        env.str("AUTH_LDAP_USER_FILTER", default="(uid=%(user)s)"),
    )
    AUTH_LDAP_GROUP_SEARCH = LDAPSearch(
        env.str("AUTH_LDAP_GROUP_SEARCH_BASE", default=""),
        ldap.SCOPE_SUBTREE,
        "(objectClass=groupOfNames)",
    )
    AUTH_LDAP_GROUP_TYPE = GroupOfNamesType()
    AUTH_LDAP_MIRROR_GROUPS = True
    AUTH_LDAP_USER_ATTR_MAP = {"first_name": "givenName", "last_name": "sn", "email": "mail"}
    AUTH_LDAP_CONNECTION_OPTIONS = {
        ldap.OPT_NETWORK_TIMEOUT: env.float("AUTH_LDAP_TIMEOUT", default=5.0),
        ldap.OPT_TIMEOUT: env.float("AUTH_LDAP_TIMEOUT", default=5.0),
    }
    AUTHENTICATION_BACKENDS = [
        "django_auth_ldap.backend.LDAPBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
