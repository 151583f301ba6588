"""A real Nova on the loopback, for testing the OpenStack driver against Nova's own
code rather than against a mock of it.

Run it with the interpreter of the Nova virtualenv (scripts/nova-venv.sh builds
it), never with the project's: Nova pins its own libraries. It starts Nova's
functional-test fixtures in this process (nova-api, conductor, scheduler and fake
computes over a real database and the real Placement service; Glance, Neutron
and Cinder are Nova's in-process fakes) and serves over HTTP, on a free port of
127.0.0.1:

    /identity   a tiny Keystone v3: password tokens and a service catalog
    /compute    the real nova-api WSGI application
    /placement  the real Placement WSGI application
    /image      a read-only Image v2 API over the Glance fixture's images
    /network    a read-only Network v2.0 API over the Neutron fixture's networks
    /harness    test controls, admin only: POST /harness/computes/<host>/stop stops
                that host's nova-compute service, /start starts a new one for it

When everything is up it prints one line of JSON (the auth URL, credentials and
the names of what it seeded) and then serves until it is killed.

    .venv-nova/bin/python tests/nova/serve.py [--computes N] [--port P]
"""

import argparse
import json
import logging
import os
import secrets
import signal
import socketserver
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

# Nova must not monkey-patch the standard library with eventlet: this process
# serves HTTP from ordinary threads.
os.environ.setdefault("OS_NOVA_DISABLE_EVENTLET_PATCHING", "1")
# oslotest reads these; a test runner's values must not leak into this server.
for _name in ("OS_TEST_TIMEOUT", "OS_STDOUT_CAPTURE", "OS_STDERR_CAPTURE", "OS_LOG_CAPTURE"):
    os.environ.pop(_name, None)

# nova.tests.functional decides on threading before anything imports eventlet,
# so it comes first.
from nova.tests.functional import integrated_helpers  # noqa: E402, I001
from nova import context as nova_context  # noqa: E402
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from placement import deploy as placement_deploy  # noqa: E402

logger = logging.getLogger("nova-harness")

REGION = "RegionOne"
PASSWORD = "nova-harness"  # noqa: S105 - a throw-away password of a loopback test server
USERS = {"admin": ["reader", "member", "admin"], "demo": ["reader", "member"]}
TOKEN_TTL = timedelta(hours=12)

# What the harness adds on top of the fixtures' own data, so tests can refer to
# things by a unique name (the Glance fixture's images all share one name).
FLAVORS = [
    {"name": "desk.small", "vcpus": 1, "ram": 1024, "disk": 1},
    {"name": "desk.medium", "vcpus": 2, "ram": 2048, "disk": 1},
    # Bigger than any fake compute, however its capacity is overcommitted.
    {"name": "desk.huge", "vcpus": 64, "ram": 262144, "disk": 1},
]
IMAGES = ["desk-win10", "desk-win11"]
# Overcommit set on purpose away from the usual 2.0 / 1.2 so a client that really
# reads Placement's inventories can be told from one that guesses.
CPU_ALLOCATION_RATIO = 3.0
RAM_ALLOCATION_RATIO = 1.5


class NovaCloud(integrated_helpers._IntegratedTestBase):
    """Nova's own functional-test base class, used as a long-lived cloud rather
    than as a test: setUp() starts everything, nothing is torn down until exit."""

    ADMIN_API = True
    # Real asynchrony: a create returns at once and the build happens behind it,
    # as it does in a real deployment.
    CAST_AS_CALL = False
    compute_hosts: list[str] = []

    def runTest(self):  # noqa: N802 - unittest's name
        """Never run: the object only exists for its setUp()."""

    def _setup_services(self):
        # Nova installs api-paste.ini under the virtualenv's etc/nova; the
        # fixtures look for it beside the source tree.
        self.flags(api_paste_config=str(Path(sys.prefix) / "etc" / "nova" / "api-paste.ini"))
        self.flags(compute_driver="fake.MediumFakeDriver")
        self.flags(
            initial_cpu_allocation_ratio=CPU_ALLOCATION_RATIO,
            initial_ram_allocation_ratio=RAM_ALLOCATION_RATIO,
        )
        self.flags(enabled=True, group="spice")
        super()._setup_services()

    def _setup_compute_service(self):
        first = None
        for host in self.compute_hosts:
            compute = self._start_compute(host)
            first = first or compute
        return first


# -- the HTTP side -------------------------------------------------------------


class Harness:
    """Routes requests to the fake Keystone, the fake Image and Network APIs, or
    the real Nova and Placement applications, by the first path segment."""

    def __init__(self, cloud: NovaCloud, nova_app, placement_app):
        self.cloud = cloud
        self.nova_app = nova_app
        self.placement_app = placement_app
        self.base_url = ""
        self.tokens: dict[str, tuple[str, datetime]] = {}
        self.lock = threading.Lock()

    # Keystone ----------------------------------------------------------------

    def catalog(self) -> list[dict]:
        services = {
            "identity": "/identity/v3",
            "compute": "/compute/v2.1",
            "placement": "/placement",
            "image": "/image",
            "network": "/network",
        }
        return [
            {
                "id": kind,
                "type": kind,
                "name": kind,
                "endpoints": [
                    {
                        "id": f"{kind}-{interface}",
                        "interface": interface,
                        "region": REGION,
                        "region_id": REGION,
                        "url": self.base_url + path,
                    }
                    for interface in ("public", "internal", "admin")
                ],
            }
            for kind, path in services.items()
        ]

    def issue_token(self, body: dict):
        identity = body.get("auth", {}).get("identity", {})
        user = identity.get("password", {}).get("user", {})
        name, password = user.get("name") or user.get("id"), user.get("password")
        if name not in USERS or password != PASSWORD:
            return (
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "The request you have made requires authentication.",
                        "title": "Unauthorized",
                    }
                },
                {},
            )
        token = secrets.token_hex(16)
        now = datetime.now(UTC)
        expires = now + TOKEN_TTL
        with self.lock:
            self.tokens[token] = (name, expires)
        domain = {"id": "default", "name": "Default"}
        payload = {
            "token": {
                "methods": ["password"],
                "issued_at": _iso(now),
                "expires_at": _iso(expires),
                "user": {"id": name, "name": name, "domain": domain, "password_expires_at": None},
                "project": {"id": nova_fixtures.PROJECT_ID, "name": "deskops", "domain": domain},
                "roles": [{"id": role, "name": role} for role in USERS[name]],
                "catalog": self.catalog(),
                "audit_ids": [secrets.token_hex(8)],
            }
        }
        return 201, payload, {"X-Subject-Token": token}

    def user_of(self, environ) -> str | None:
        token = environ.get("HTTP_X_AUTH_TOKEN", "")
        with self.lock:
            entry = self.tokens.get(token)
        if entry is None or entry[1] < datetime.now(UTC):
            return None
        return entry[0]

    def identity(self, environ, path: str):
        method = environ["REQUEST_METHOD"]
        if path in ("", "/", "/v3", "/v3/"):
            return (
                200,
                _version_document(
                    "v3.14", self.base_url + "/identity/v3/", multiple=path in ("", "/")
                ),
                {},
            )
        if path == "/v3/auth/tokens" and method == "POST":
            return self.issue_token(_json_body(environ))
        if path == "/v3/auth/tokens" and method in ("GET", "HEAD"):
            if self.user_of({"HTTP_X_AUTH_TOKEN": environ.get("HTTP_X_SUBJECT_TOKEN", "")}):
                return 200, {}, {}
            return 404, {"error": {"code": 404, "message": "token not found"}}, {}
        return 404, {"error": {"code": 404, "message": f"no {path} here"}}, {}

    # Image and Network ---------------------------------------------------------

    def images(self, path: str, query: dict):
        if path in ("", "/"):
            return 300, _version_document("v2.16", self.base_url + "/image/v2/", multiple=True), {}
        images = [_image_view(image) for image in self.cloud.glance.images.values()]
        if path in ("/v2/images", "/v2/images/"):
            return 200, {"images": _filter(images, query), "schema": "/v2/schemas/images"}, {}
        if path.startswith("/v2/images/"):
            wanted = path.rsplit("/", 1)[1]
            for image in images:
                if image["id"] == wanted:
                    return 200, image, {}
        return 404, {"message": "image not found"}, {}

    def networks(self, path: str, query: dict):
        if path in ("", "/"):
            return (
                200,
                _version_document("v2.0", self.base_url + "/network/v2.0/", multiple=True),
                {},
            )
        networks = self.cloud.neutron.list_networks()["networks"]
        if path in ("/v2.0/networks", "/v2.0/networks.json"):
            return 200, {"networks": _filter(networks, query)}, {}
        if path.startswith("/v2.0/networks/"):
            wanted = path.rsplit("/", 1)[1].removesuffix(".json")
            for network in networks:
                if network["id"] == wanted:
                    return 200, {"network": network}, {}
            return 404, {"NeutronError": {"type": "NetworkNotFound", "message": "not found"}}, {}
        if path in ("/v2.0/extensions", "/v2.0/extensions.json"):
            return 200, {"extensions": []}, {}
        return 404, {"NeutronError": {"type": "HTTPNotFound", "message": "not found"}}, {}

    # Dispatch ------------------------------------------------------------------

    # Test controls -------------------------------------------------------------

    def control(self, environ, path: str):
        """Stop or start a host's compute service, as a dead or repaired node would."""
        parts = path.strip("/").split("/")
        if environ["REQUEST_METHOD"] != "POST" or len(parts) != 3 or parts[0] != "computes":
            return 404, {"error": f"no control at {path}"}, {}
        host, action = parts[1], parts[2]
        computes = self.cloud.computes
        if host not in computes or action not in ("stop", "start"):
            return 404, {"error": f"no {action} for {host}"}, {}
        with self.lock:
            if action == "stop":
                computes[host].stop()
            else:
                # A new service for the host, as after a reboot; the fake driver
                # keeps the servers it had defined.
                computes[host] = self.cloud.restart_compute_service(computes[host])
        return 200, {"host": host, "action": action}, {}

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        prefix, _, rest = path.lstrip("/").partition("/")
        rest = "/" + rest if rest else ""
        try:
            if prefix == "identity":
                return _reply(start_response, *self.identity(environ, rest))
            user = self.user_of(environ)
            if prefix in ("compute", "placement") and rest in ("", "/"):
                user = user or "anonymous"  # version discovery is open, as in Keystone
            if user is None:
                return _reply(
                    start_response, 401, {"error": {"code": 401, "message": "no valid token"}}, {}
                )
            if prefix == "compute":
                return self.nova_app(_as_nova_user(environ, user, "/compute", rest), start_response)
            if prefix == "placement":
                return self.placement_app(_as_placement_user(environ, user, rest), start_response)
            query = parse_qs(environ.get("QUERY_STRING", ""))
            if prefix == "image":
                return _reply(start_response, *self.images(rest, query))
            if prefix == "network":
                return _reply(start_response, *self.networks(rest, query))
            if prefix == "harness" and user == "admin":
                return _reply(start_response, *self.control(environ, rest))
        except Exception:  # a harness bug must answer 500, not drop the connection
            logger.exception("harness error on %s", path)
            return _reply(start_response, 500, {"error": "harness error"}, {})
        return _reply(start_response, 404, {"error": f"nothing at {path}"}, {})


def _as_nova_user(environ, user: str, script_name: str, path: str) -> dict:
    """What Nova's stubbed auth middleware reads, filled in from the token."""
    environ = dict(environ)
    environ["SCRIPT_NAME"] = script_name
    environ["PATH_INFO"] = path or "/"
    roles = USERS.get(user, ["reader"])
    environ["HTTP_X_AUTH_USER"] = user
    environ["HTTP_X_USER_ID"] = user
    environ["HTTP_X_AUTH_PROJECT_ID"] = nova_fixtures.PROJECT_ID
    environ["HTTP_X_PROJECT_ID"] = nova_fixtures.PROJECT_ID
    environ["HTTP_X_ROLES"] = ",".join(roles)
    return environ


def _as_placement_user(environ, user: str, path: str) -> dict:
    """Placement's no-auth middleware takes `user:project` as the token."""
    environ = dict(environ)
    environ["SCRIPT_NAME"] = "/placement"
    environ["PATH_INFO"] = path or "/"
    environ["HTTP_X_AUTH_TOKEN"] = f"{user}:{nova_fixtures.PROJECT_ID}"
    environ["HTTP_X_ROLES"] = ",".join(USERS.get(user, ["reader"]))
    return environ


def _image_view(image: dict) -> dict:
    view = {
        key: value
        for key, value in image.items()
        if key not in ("properties", "deleted", "deleted_at", "is_public")
    }
    for key in ("created_at", "updated_at"):
        if isinstance(view.get(key), datetime):
            view[key] = _iso(view[key])
    view.update(image.get("properties", {}))
    view.setdefault("visibility", "public")
    view["self"] = f"/v2/images/{image['id']}"
    return view


def _filter(items: list[dict], query: dict) -> list[dict]:
    for key in ("name", "id", "status"):
        if key in query:
            items = [item for item in items if str(item.get(key)) in query[key]]
    return items


def _version_document(version: str, href: str, *, multiple: bool) -> dict:
    entry = {
        "id": version,
        "status": "CURRENT" if not version.startswith("v3") else "stable",
        "updated": "2024-01-01T00:00:00Z",
        "links": [{"rel": "self", "href": href}],
        "media-types": [{"base": "application/json", "type": "application/json"}],
    }
    if multiple:
        return (
            {"versions": {"values": [entry]}} if version.startswith("v3") else {"versions": [entry]}
        )
    return {"version": entry}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json_body(environ) -> dict:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    try:
        return json.loads(raw or b"{}")
    except ValueError:
        return {}


def _reply(start_response, status: int, body: dict, headers: dict):
    payload = json.dumps(body).encode()
    reason = {
        200: "OK",
        201: "Created",
        300: "Multiple Choices",
        401: "Unauthorized",
        404: "Not Found",
        500: "Internal Server Error",
    }
    start_response(
        f"{status} {reason.get(status, 'Status')}",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *headers.items(),
        ],
    )
    return [payload]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 64


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the standard library's name
        logger.debug("%s %s", self.address_string(), format % args)


# -- seeding and start-up ------------------------------------------------------


def seed(cloud: NovaCloud) -> dict:
    """Flavors and images with unique names, and the facts a client test needs."""
    admin = cloud.api_fixture.admin_api
    # Room for any test: what runs out must be the hosts, never the quota.
    admin.update_quota({"instances": 1000, "cores": 10000, "ram": 10**8})
    flavors = {}
    for flavor in FLAVORS:
        created = admin.post_flavor({"flavor": flavor})
        flavors[flavor["name"]] = {**flavor, "id": created["id"]}
    images = {}
    for name in IMAGES:
        image = dict(cloud.glance.image1, id=str(uuid.uuid4()), name=name, tags=[])
        images[name] = cloud.glance.create(nova_context.get_admin_context(), image)["id"]
    network = cloud.neutron.network_1
    return {
        "flavors": flavors,
        "images": images,
        "network": {"id": network["id"], "name": network["name"]},
        "volumes": [str(uuid.uuid4()) for _ in range(2)],
    }


def start_cloud(computes: int) -> NovaCloud:
    NovaCloud.compute_hosts = [f"cmp-{index}" for index in range(1, computes + 1)]
    cloud = NovaCloud()
    cloud.setUp()
    return cloud


def serve(cloud: NovaCloud, port: int) -> tuple[WSGIServer, Harness]:
    nova_app = cloud.api_fixture.app()
    placement_app = placement_deploy.loadapp(cloud.placement_fixture.conf_fixture.conf)
    harness = Harness(cloud, nova_app, placement_app)
    server = make_server(
        "127.0.0.1", port, harness, server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    harness.base_url = f"http://127.0.0.1:{server.server_port}"
    threading.Thread(target=server.serve_forever, name="harness-http", daemon=True).start()
    return server, harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--computes", type=int, default=3)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    started = time.monotonic()
    cloud = start_cloud(args.computes)
    seeded = seed(cloud)
    server, harness = serve(cloud, args.port)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    ready = {
        "auth_url": harness.base_url + "/identity/v3",
        "base_url": harness.base_url,
        "region_name": REGION,
        "username": "admin",
        "member_username": "demo",
        "password": PASSWORD,
        "project_name": "deskops",
        "project_id": nova_fixtures.PROJECT_ID,
        "domain": "Default",
        "hosts": NovaCloud.compute_hosts,
        "host_vcpus": 10,
        "host_memory_mb": 8192,
        "cpu_allocation_ratio": CPU_ALLOCATION_RATIO,
        "ram_allocation_ratio": RAM_ALLOCATION_RATIO,
        "startup_seconds": round(time.monotonic() - started, 2),
        **seeded,
    }
    print(json.dumps(ready), flush=True)
    parent = os.getppid()
    # Ends with its parent too, so a test run that is killed leaves no Nova behind.
    while not stop.wait(1.0) and os.getppid() == parent:
        pass
    server.shutdown()
    # Stops the services and removes the fixtures' temporary files.
    cloud.doCleanups()
    return 0


if __name__ == "__main__":
    sys.exit(main())
