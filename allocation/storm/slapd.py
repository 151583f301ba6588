"""A throwaway OpenLDAP server: slapd started by python-ldap's `slapdtest` in a
temporary folder on a free loopback port, with the directory tree loaded from
plain (dn, attributes) pairs.

The login-storm benchmark fills one with thousands of users; the directory tests
fill one with a call-center company. Both get the same server: an MDB database
with equality indexes on the attributes a login searches by (`uid`, `member`), so
a search costs what it costs on a real directory and not a scan of every entry,
and, when asked, the memberof overlay, so users carry the `memberOf` attribute
Active Directory style lookups read."""

import io
import os
import signal
from collections.abc import Iterable
from pathlib import Path

import ldif
from slapdtest import SlapdObject

# The global part of slapd's configuration (cn=config) in slapdtest's template
# format; a line that starts with a space continues the one before.
GLOBAL_CONFIG = r"""dn: cn=config
objectClass: olcGlobal
cn: config
olcServerID: %(serverid)s
olcLogLevel: %(loglevel)s
olcAllows: bind_v2
olcAuthzRegexp: {0}"gidnumber=%(root_gid)s\+uidnumber=%(root_uid)s,cn=peercred,
 cn=external,cn=auth" "%(rootdn)s"
olcTLSCACertificateFile: %(cafile)s
olcTLSCertificateFile: %(servercert)s
olcTLSCertificateKeyFile: %(serverkey)s
olcTLSVerifyClient: never

dn: cn=module,cn=config
objectClass: olcModuleList
cn: module
olcModuleLoad: back_%(database)s
olcModuleLoad: memberof
"""

# The database, loaded after the schemas: its indexes name attribute types that
# only exist once the schemas are in. Group entries are readable only by bound
# users, as on a typical company directory, so group lookups cannot succeed
# anonymously by accident. (The ACL names the groups by a regular expression so
# it does not depend on the suffix being parsed as a DN.)
DATABASE_CONFIG = r"""dn: olcDatabase={1}%(database)s,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}%(database)s
olcSuffix: %(suffix)s
olcRootDN: %(rootdn)s
olcRootPW: %(rootpw)s
olcDbDirectory: %(directory)s
olcDbMaxSize: 1073741824
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcDbIndex: member eq
olcAccess: {0}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {1}to dn.regex="(^|,)ou=groups,%(suffix)s$" by users read by * none
olcAccess: {2}to * by * read
"""

# The memberof overlay needs the `member` attribute type at load time, so it too
# comes after the schemas.
MEMBEROF_OVERLAY = """dn: olcOverlay={0}memberof,olcDatabase={1}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {0}memberof
olcMemberOfRefInt: TRUE
"""

Entry = tuple[str, dict[str, list[bytes]]]


def entry(**attributes) -> dict[str, list[bytes]]:
    """LDAP attributes from plain values: a string or a list of strings each."""
    return {
        name: [v.encode() for v in (value if isinstance(value, list | tuple) else [value])]
        for name, value in attributes.items()
    }


class ThrowawayDirectory(SlapdObject):
    """A slapd of its own in `rundir_parent`, serving `suffix` on the loopback.

    `start()` runs it (about 0.3 s), `add_entries()` loads entries, `stop()` ends it
    and removes its folder. The outage controls stop it as a crash would, or
    freeze it so it accepts connections and answers nothing."""

    suffix = "dc=example,dc=com"
    root_cn = "admin"
    slapd_loglevel = "0"
    slapd_conf_template = GLOBAL_CONFIG

    def __init__(
        self, *, rundir_parent: Path | str, suffix: str | None = None, memberof: bool = True
    ):
        # slapdtest puts its run folder in $TMP or the working directory.
        self.TMPDIR = str(rundir_parent)
        if suffix:
            self.suffix = suffix
        self.memberof = memberof
        super().__init__()

    def setup_rundir(self):
        super().setup_rundir()
        rundir = Path(self.testrundir)
        database = rundir / "database.ldif"
        database.write_text(
            DATABASE_CONFIG
            % {
                "database": self.database,
                "suffix": self.suffix,
                "rootdn": self.root_dn,
                "rootpw": self.root_pw,
                "directory": self._db_directory,
            }
        )
        files = ["core.ldif", "cosine.ldif", "inetorgperson.ldif", str(database)]
        if self.memberof:
            overlay = rundir / "memberof.ldif"
            overlay.write_text(MEMBEROF_OVERLAY)
            files.append(str(overlay))
        self.openldap_schema_files = tuple(files)

    def add_entries(self, entries: Iterable[Entry]) -> None:
        """Add entries in the order given (parents before children; groups after
        their members, so the memberof overlay writes each member's `memberOf`)."""
        text = io.StringIO()
        writer = ldif.LDIFWriter(text)
        for dn, attributes in entries:
            writer.unparse(dn, attributes)
        self.ldapadd(text.getvalue())

    def stop_serving(self) -> None:
        """Stop slapd as an outage would; the data stays for `serve_again`."""
        self.terminate()
        self.wait()

    def serve_again(self) -> None:
        self.resume()

    def freeze(self) -> None:
        """Keep the port open but answer nothing, like a hung server."""
        os.kill(self._proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._proc.pid, signal.SIGCONT)


def organizational_unit(dn: str) -> Entry:
    name = dn.split(",", 1)[0].split("=", 1)[1]
    return dn, entry(objectClass="organizationalUnit", ou=name)
