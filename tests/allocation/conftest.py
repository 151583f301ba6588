"""Fixtures for the directory tests: one real OpenLDAP server (slapd) for the whole
session, holding a call-center company's people, sites, departments and roles.

The server is the project's throwaway slapd (allocation/storm/slapd.py:
python-ldap's `slapdtest` in a temporary folder on a free loopback port). Its
users carry a real `memberOf` attribute, maintained by OpenLDAP's memberof
overlay as the groups are added, so both group styles read what a directory
server says."""

from dataclasses import dataclass

import pytest

from allocation.storm.slapd import ThrowawayDirectory
from allocation.storm.slapd import entry as _entry
from portal.settings.ldap import directory_settings
from tests.conftest import require

BASE = "dc=example,dc=com"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
SERVICE_DN = f"cn=deskops-search,ou=services,{BASE}"
SERVICE_PASSWORD = "search-only-7d3f"
ROLES = ("agents", "vip-agents", "supervisors", "it-staff")

SHANGHAI_SUPPORT = ("support", "shanghai", "sites")
SHANGHAI_TIER2 = ("tier2", *SHANGHAI_SUPPORT)
SHANGHAI_SALES = ("sales", "shanghai", "sites")
HEFEI_SALES = ("sales", "hefei", "sites")
HEFEI_SUPPORT = ("support", "hefei", "sites")
HQ_IT = ("it", "headquarters")


@dataclass(frozen=True)
class Person:
    uid: str
    given_name: str
    surname: str
    ous: tuple[str, ...]  # the OUs the entry sits in, innermost first, below ou=people
    groups: frozenset[str]

    @property
    def dn(self) -> str:
        return ",".join([f"uid={self.uid}", *(f"ou={ou}" for ou in self.ous), PEOPLE])

    @property
    def password(self) -> str:
        return f"{self.uid}-Desk-2024"

    @property
    def mail(self) -> str:
        return f"{self.uid}@example.com"


def _person(uid: str, given_name: str, surname: str, ous: tuple, *groups: str) -> Person:
    return Person(uid, given_name, surname, ous, frozenset(groups))


STAFF = [
    _person("wli", "Wei", "Li", SHANGHAI_SUPPORT, "agents"),
    _person("fwang", "Fang", "Wang", SHANGHAI_SUPPORT, "agents"),
    _person("mzhang", "Min", "Zhang", SHANGHAI_SUPPORT, "agents"),
    _person("jliu", "Jie", "Liu", SHANGHAI_SUPPORT, "agents"),
    _person("ychen", "Yan", "Chen", SHANGHAI_SUPPORT, "agents"),
    _person("qzhao", "Qiang", "Zhao", SHANGHAI_SUPPORT, "agents", "supervisors"),
    _person("xyang", "Xin", "Yang", SHANGHAI_TIER2, "agents", "vip-agents"),
    _person("lhuang", "Lei", "Huang", SHANGHAI_TIER2, "vip-agents"),
    _person("hwu", "Hui", "Wu", SHANGHAI_SALES, "agents"),
    _person("pzhou", "Ping", "Zhou", SHANGHAI_SALES, "agents"),
    _person("cxie", "Chen", "Xie", SHANGHAI_SALES, "agents"),
    _person("nxu", "Na", "Xu", HEFEI_SALES, "agents"),
    _person("tsun", "Tao", "Sun", HEFEI_SALES, "agents"),
    _person("jma", "Jun", "Ma", HEFEI_SALES, "agents"),
    _person("lzhu", "Li", "Zhu", HEFEI_SALES, "agents"),
    _person("ghu", "Gang", "Hu", HEFEI_SALES, "supervisors"),
    _person("dliang", "Dan", "Liang", HEFEI_SALES),  # a new hire, in no group yet
    _person("kguo", "Kai", "Guo", HEFEI_SUPPORT, "agents"),
    _person("yhe", "Yun", "He", HEFEI_SUPPORT, "agents"),
    _person("rlin", "Rui", "Lin", HEFEI_SUPPORT, "vip-agents"),
    _person("bluo", "Bin", "Luo", HQ_IT, "it-staff"),
    _person("szheng", "Song", "Zheng", HQ_IT, "it-staff", "supervisors"),
]


class CallCenterDirectory(ThrowawayDirectory):
    """A slapd holding `STAFF` (with the memberof overlay), with the controls the
    outage tests need."""

    suffix = BASE
    people = {person.uid: person for person in STAFF}

    def load_company(self) -> None:
        """Add the tree, the people, a search account, then the groups (last, so the
        overlay writes each member's `memberOf`)."""
        self.add_entries(_company_entries())


def _company_entries() -> list[tuple[str, dict]]:
    entries = [
        (BASE, _entry(objectClass=["dcObject", "organization"], dc="example", o="Example")),
        (PEOPLE, _entry(objectClass="organizationalUnit", ou="people")),
        (GROUPS, _entry(objectClass="organizationalUnit", ou="groups")),
        (f"ou=services,{BASE}", _entry(objectClass="organizationalUnit", ou="services")),
        (
            SERVICE_DN,
            _entry(
                objectClass=["organizationalRole", "simpleSecurityObject"],
                cn="deskops-search",
                userPassword=SERVICE_PASSWORD,
            ),
        ),
    ]
    ous = sorted({person.ous[i:] for person in STAFF for i in range(len(person.ous))}, key=len)
    for path in ous:
        dn = ",".join([*(f"ou={ou}" for ou in path), PEOPLE])
        entries.append((dn, _entry(objectClass="organizationalUnit", ou=path[0])))
    for person in STAFF:
        attributes = _entry(
            objectClass="inetOrgPerson",
            uid=person.uid,
            cn=f"{person.given_name} {person.surname}",
            sn=person.surname,
            givenName=person.given_name,
            mail=person.mail,
            userPassword=person.password,
        )
        entries.append((person.dn, attributes))
    for role in ROLES:
        members = [person.dn for person in STAFF if role in person.groups]
        entries.append(
            (f"cn={role},{GROUPS}", _entry(objectClass="groupOfNames", cn=role, member=members))
        )
    return entries


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    """The company directory, served by a real slapd for the whole session."""
    try:
        server = CallCenterDirectory(rundir_parent=tmp_path_factory.mktemp("slapd"))
    except ValueError:  # slapdtest found no slapd, ldap tools or schemas
        require(False, "needs slapd: apt-get install slapd ldap-utils")
    server.start()
    try:
        server.load_company()
        yield server
    finally:
        server.stop()


@pytest.fixture
def use_directory(settings, slapd):
    """Point Django at the test directory through the same builder the environment
    uses (`directory_settings`); keyword arguments override its values. Calling it
    again replaces the whole configuration."""
    applied: set[str] = set()

    def configure(**overrides):
        values = {
            "server_uri": slapd.ldap_uri,
            "user_search_base": PEOPLE,
            "group_search_base": GROUPS,
            **overrides,
        }
        new = directory_settings(**values)
        for name in applied - new.keys():
            delattr(settings, name)
        for name, value in new.items():
            setattr(settings, name, value)
        applied.clear()
        applied.update(new)
        return new

    return configure


@pytest.fixture
def directory_stopped(slapd):
    """The directory server is down for the test and back up afterwards."""
    slapd.stop_serving()
    try:
        yield slapd
    finally:
        slapd.serve_again()


@pytest.fixture
def directory_hung(slapd):
    """The directory server accepts connections but answers nothing."""
    slapd.freeze()
    try:
        yield slapd
    finally:
        slapd.thaw()


@pytest.fixture
def directory_edit(slapd):
    """Change the directory for one test: `edit(ldif)` applies an ldapmodify change,
    and its `undo` LDIF is applied (latest first) when the test ends."""
    undos: list[str] = []

    def edit(change: str, *, undo: str) -> None:
        slapd.ldapmodify(change)
        undos.append(undo)

    yield edit
    for undo in reversed(undos):
        slapd.ldapmodify(undo)
