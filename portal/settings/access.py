"""Who may do what on the portal: the groups that grant each role, and the limit
on failed staff logins.

A role is granted by membership of a Django group. With LDAP logins the
directory's groups are mirrored into Django groups of the same name at every
login, so the directory decides; without LDAP an administrator puts local users
in the groups. Superusers (the local break-glass administrator) are always
administrators."""

from .env import env

# Each role's groups, comma-separated. The roles are ordered: viewer < help desk <
# operator < administrator, and each one can do everything the ones below can.
PORTAL_ROLE_GROUPS = {
    "viewer": env.list("PORTAL_VIEWER_GROUPS", default=["deskops-viewers"]),
    "helpdesk": env.list("PORTAL_HELPDESK_GROUPS", default=["deskops-helpdesk"]),
    "operator": env.list("PORTAL_OPERATOR_GROUPS", default=["deskops-operators"]),
    "administrator": env.list("PORTAL_ADMINISTRATOR_GROUPS", default=["deskops-administrators"]),
}

# Failed staff logins allowed per user name, and per source address, within the
# window (seconds) before the login form refuses further attempts.
STAFF_LOGIN_FAILURES_PER_USER = env.int("STAFF_LOGIN_FAILURES_PER_USER", default=5)
STAFF_LOGIN_FAILURES_PER_ADDRESS = env.int("STAFF_LOGIN_FAILURES_PER_ADDRESS", default=20)
STAFF_LOGIN_LOCKOUT = env.int("STAFF_LOGIN_LOCKOUT", default=900)
