"""The OpenStack driver: Nova (with Glance, Neutron and Placement for look-ups)
through openstacksdk.

Each region names an entry of clouds.yaml (`Region.openstack_cloud`) and, when
that cloud has several, a region of it (`Region.openstack_region`). A process
keeps one connection per region, so a token and the service catalog are fetched
once, not at every call.

Every call has a timeout and every failure becomes a `cloud.errors` exception:
the cloud unreachable, timing out or answering 5xx is `CloudUnavailable` (after a
few retries with backoff), a 404 is `ServerNotFound`, the scheduler's "No valid
host" is `NoValidHost`, any other refusal is `CloudError`. A 4xx is never
retried: asking again gets the same answer.

Calls that need a given Nova API pin its microversion (the `MV_*` constants
below), so the answer has the same shape whatever the cloud's newest version is;
docs/openstack.md lists what each needs."""

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import openstack
import requests
import urllib3
from django.conf import settings
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from keystoneauth1 import exceptions as ks_exceptions
from openstack import exceptions as sdk_exceptions

from cloud.choices import HostState, ServerStatus
from cloud.errors import CloudError, CloudUnavailable, NoValidHost, ServerNotFound

from .base import CloudDriver, HostInfo, ServerInfo, ServerSpec, SpiceConsole

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Compute API microversions, each the oldest that has what its calls need.
MV_HYPERVISORS = "2.53"  # service host and uuid ids; usage figures are gone after 2.87
MV_CREATE = "2.74"  # `host` in POST /servers (admin only)
MV_LIVE_MIGRATE = "2.68"  # no `force`: the scheduler always checks the target
MV_VOLUMES = "2.79"
MV_EVACUATE = "2.95"  # the evacuated server is left SHUTOFF on its new host
MV_SPICE_DIRECT = "2.99"  # spice-direct consoles, tls_port in console tokens
MV_BROWSER_CONSOLE = "2.6"  # remote-consoles API
MV_EXTRA_SPECS = "2.86"  # Nova validates extra spec keys and values it knows

# Overcommit ratios assumed when Placement cannot be asked: Nova's usual
# production settings for a desktop cloud (CPU 1:2, memory 1:1.2), the same as
# the `Host` model's defaults.
DEFAULT_CPU_ALLOCATION_RATIO = 2.0
DEFAULT_RAM_ALLOCATION_RATIO = 1.2

NO_VALID_HOST = "no valid host"
GATEWAY_STATUSES = {502, 503, 504}


def _setting(name: str, default):
    return getattr(settings, name, default)


# -- connections ---------------------------------------------------------------

_connections: dict[tuple, Any] = {}
_connections_lock = threading.Lock()


def connection_for(region) -> Any:
    """The process's connection to a region, made on first use.

    The key holds the process id because a connection must not cross a fork (a
    Celery prefork worker would share the parent's sockets), and the clouds.yaml
    entry and file so an edited region gets a new connection."""
    key = (
        os.getpid(),
        region.pk,
        region.openstack_cloud,
        region.openstack_region,
        os.environ.get("OS_CLIENT_CONFIG_FILE", ""),
    )
    with _connections_lock:
        connection = _connections.get(key)
        if connection is None:
            connection = _connect(region)
            _connections[key] = connection
    return connection


def forget_connections() -> None:
    """Drop every cached connection (after clouds.yaml changed, and in tests)."""
    with _connections_lock:
        _connections.clear()


def _connect(region):
    if not region.openstack_cloud:
        raise CloudError(
            f"Region {region.name} uses the OpenStack driver but names no clouds.yaml entry."
        )
    try:
        return openstack.connect(
            cloud=region.openstack_cloud,
            region_name=region.openstack_region or None,
            app_name="deskops",
            api_timeout=_setting("OPENSTACK_API_TIMEOUT", 30),
            # Retries are this module's job, with its own rules (see `_call`).
            connect_retries=0,
            status_code_retries=0,
        )
    except sdk_exceptions.ConfigException as exc:
        raise CloudError(
            f"Region {region.name}: clouds.yaml has no usable entry "
            f"{region.openstack_cloud!r}: {exc}"
        ) from exc


# -- errors --------------------------------------------------------------------


def _chain(exc: BaseException):
    """The exception and the ones it was raised from, innermost last."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _status_of(exc: BaseException) -> int | None:
    for link in _chain(exc):
        status = getattr(link, "status_code", None) or getattr(link, "http_status", None)
        if isinstance(status, int):
            return status
    return None


def _is_connection_failure(exc: BaseException) -> bool:
    """Could not talk to the cloud at all: refused, reset, DNS, timed out."""
    return any(
        isinstance(
            link, ks_exceptions.ConnectionError | requests.ConnectionError | requests.Timeout
        )
        and not isinstance(link, ks_exceptions.SSLError)
        for link in _chain(exc)
    )


def _never_sent(exc: BaseException) -> bool:
    """The request cannot have reached Nova: no connection was ever made."""
    for link in _chain(exc):
        if isinstance(link, urllib3.exceptions.NewConnectionError | ConnectionRefusedError):
            return True
        reason = getattr(link.args[0], "reason", None) if link.args else None
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return True
    return False


def _message(exc: BaseException) -> str:
    details = getattr(exc, "details", None)
    return str(details or exc).strip()


def _translate(exc: BaseException, what: str) -> CloudError:
    """One `cloud.errors` exception for whatever openstacksdk or keystoneauth raised."""
    status = _status_of(exc)
    message = f"{what}: {_message(exc)}"
    if status is None:
        if _is_connection_failure(exc):
            return CloudUnavailable(message)
        return CloudError(message)
    if status >= 500:
        return CloudUnavailable(message)
    if status == 404:
        return ServerNotFound(message)
    if NO_VALID_HOST in message.lower():
        return NoValidHost(message)
    return CloudError(message)


def _retriable(exc: BaseException, *, only_if_unsent: bool) -> bool:
    """Worth asking again: the cloud did not answer, or answered with a server
    error. With `only_if_unsent`, only when Nova cannot have acted on the first
    try (no connection made, or a gateway answered in its place)."""
    status = _status_of(exc)
    if only_if_unsent:
        return status in GATEWAY_STATUSES or (status is None and _never_sent(exc))
    if status is not None:
        return status >= 500
    return _is_connection_failure(exc)


_TRANSLATED = (
    sdk_exceptions.SDKException,
    ks_exceptions.ClientException,
    requests.RequestException,
)


# -- mapping -------------------------------------------------------------------


def _first_fixed_ip(addresses: dict | None) -> str | None:
    """The server's first fixed address, IPv4 before IPv6 (what a thin client on
    the tenant network connects to); a floating address only if there is no other."""
    entries = [entry for network in (addresses or {}).values() for entry in network]
    fixed = [e for e in entries if e.get("OS-EXT-IPS:type", "fixed") == "fixed"] or entries
    fixed.sort(key=lambda entry: entry.get("version", 4) != 4)
    return fixed[0]["addr"] if fixed else None


def _server_info(server) -> ServerInfo:
    fault = server.fault or {}
    return ServerInfo(
        id=server.id,
        name=server.name or "",
        status=server.status,
        task_state=server.task_state or None,
        host=server.compute_host or "",
        ip_address=_first_fixed_ip(server.addresses),
        # Nova leaves it out when policy hides it from the caller.
        host_status=server.host_status or "UNKNOWN",
        fault=(fault.get("message") or "").strip() if isinstance(fault, dict) else "",
        created_at=parse_datetime(server.created_at) if server.created_at else None,
    )


def _host_state(service: dict | None) -> str:
    if service is None or service.get("state") == "down" or service.get("forced_down"):
        return HostState.DOWN
    if service.get("status") == "disabled":
        return HostState.DISABLED
    return HostState.UP


def _ratio(inventories: dict, resource_class: str, default: float) -> float:
    return float(inventories.get(resource_class, {}).get("allocation_ratio", default))


def _console_token(url: str) -> str:
    token = parse_qs(urlsplit(url).query).get("token", [""])[0]
    if not token:
        raise CloudError(f"Nova returned a console URL without a token: {url}")
    return token


# -- the driver ----------------------------------------------------------------


class OpenStackDriver(CloudDriver):
    """A region served by Nova. Needs an admin account for host placement,
    hypervisors and console tokens (docs/openstack.md)."""

    def __init__(
        self,
        region,
        *,
        connection=None,
        retries: int | None = None,
        backoff: float | None = None,
        schedule_timeout: float | None = None,
        poll_interval: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.region = region
        self._connection = connection
        self.retries = _setting("OPENSTACK_RETRIES", 3) if retries is None else retries
        self.backoff = _setting("OPENSTACK_RETRY_BACKOFF", 0.5) if backoff is None else backoff
        self.schedule_timeout = (
            _setting("OPENSTACK_SCHEDULE_TIMEOUT", 30)
            if schedule_timeout is None
            else schedule_timeout
        )
        self.poll_interval = poll_interval
        self.sleep = sleep

    @property
    def connection(self):
        if self._connection is None:
            self._connection = connection_for(self.region)
        return self._connection

    # -- calling the cloud -------------------------------------------------------

    def _call(self, what: str, call: Callable[[], T], *, only_if_unsent: bool = False) -> T:
        """Run one cloud call, retrying a failure worth retrying with exponential
        backoff, and turn whatever is left into a `cloud.errors` exception."""
        attempt = 0
        while True:
            try:
                return call()
            except CloudError:
                raise
            except _TRANSLATED as exc:
                if attempt < self.retries and _retriable(exc, only_if_unsent=only_if_unsent):
                    delay = self.backoff * 2**attempt
                    attempt += 1
                    logger.warning(
                        "region %s: %s failed (%s); retry %s of %s in %.1f s",
                        self.region.name,
                        what,
                        _message(exc),
                        attempt,
                        self.retries,
                        delay,
                    )
                    self.sleep(delay)
                    continue
                raise _translate(exc, what) from exc

    def _request(
        self,
        service: str,
        method: str,
        url: str,
        *,
        what: str,
        microversion: str | None = None,
        json: dict | None = None,
        params: dict | None = None,
        only_if_unsent: bool = False,
    ) -> dict:
        """A raw REST call to one of the region's services, for the operations
        that need a given microversion; returns the JSON body ({} when empty)."""

        def send():
            proxy = getattr(self.connection, service)
            response = proxy.request(
                url, method, microversion=microversion, json=json, params=params
            )
            sdk_exceptions.raise_from_response(response)
            return response.json() if response.content else {}

        return self._call(what, send, only_if_unsent=only_if_unsent)

    def _action(self, server_id: str, body: dict, what: str, microversion: str | None = None):
        self._request(
            "compute",
            "POST",
            f"/servers/{server_id}/action",
            json=body,
            microversion=microversion,
            what=f"{what} server {server_id}",
        )

    # -- look-ups ----------------------------------------------------------------

    def _find(self, service: str, kind: str, name_or_id: str) -> str:
        """The id of a flavor, image or network named by name or id; a clear
        `CloudError` if the region has none (or several) by that name."""

        def lookup():
            # Inside the call: reaching a service's proxy may already ask the cloud.
            find = getattr(getattr(self.connection, service), f"find_{kind}")
            try:
                return find(name_or_id, ignore_missing=False).id
            except sdk_exceptions.NotFoundException:
                return None
            except sdk_exceptions.DuplicateResource as exc:
                raise CloudError(
                    f"Region {self.region.name} has several {kind}s named {name_or_id!r}."
                ) from exc

        found = self._call(f"find {kind} {name_or_id}", lookup)
        if found is None:
            raise CloudError(f"Region {self.region.name} has no {kind} {name_or_id!r}.")
        return found

    def _flavor_id(self, name: str) -> str:
        return self._find("compute", "flavor", name)

    def _image_id(self, name_or_id: str) -> str:
        return self._find("image", "image", name_or_id)

    def _networks(self, name_or_id: str) -> list[dict] | str:
        if not name_or_id:
            return "auto"  # Nova picks the project's only network or allocates one
        return [{"uuid": self._find("network", "network", name_or_id)}]

    def list_flavors(self) -> list[str]:
        return self._call(
            "list flavors", lambda: [f.name for f in self.connection.compute.flavors()]
        )

    def flavor_extra_specs(self, flavor: str) -> dict[str, str]:
        return self._extra_specs(self._flavor_id(flavor), flavor)

    def _extra_specs(self, flavor_id: str, flavor: str) -> dict[str, str]:
        answer = self._request(
            "compute",
            "GET",
            f"/flavors/{flavor_id}/os-extra_specs",
            microversion=MV_EXTRA_SPECS,
            what=f"extra specs of flavor {flavor}",
        )
        return {key: str(value) for key, value in answer.get("extra_specs", {}).items()}

    def flavor_update_extra_specs(
        self, flavor: str, *, set_specs: dict[str, str], unset: list[str] | tuple = ()
    ) -> dict[str, str]:
        """A POST merges the keys to set into the flavor's; each key to remove is
        a DELETE of its own. At microversion 2.86 Nova checks the keys and values
        it knows (`quota:cpu_shares` must be a number, say) and refuses the whole
        POST with a 400 otherwise, which arrives here as a `CloudError`. Changing
        extra specs needs an admin account (Nova's default policy)."""
        flavor_id = self._flavor_id(flavor)
        if set_specs:
            self._request(
                "compute",
                "POST",
                f"/flavors/{flavor_id}/os-extra_specs",
                json={"extra_specs": {key: str(value) for key, value in set_specs.items()}},
                microversion=MV_EXTRA_SPECS,
                what=f"set extra specs of flavor {flavor}",
            )
        for key in unset:
            try:
                self._request(
                    "compute",
                    "DELETE",
                    f"/flavors/{flavor_id}/os-extra_specs/{key}",
                    microversion=MV_EXTRA_SPECS,
                    what=f"remove extra spec {key} of flavor {flavor}",
                )
            except ServerNotFound:
                pass  # already gone: what was asked for
        return self._extra_specs(flavor_id, flavor)

    def list_images(self) -> list[str]:
        return self._call("list images", lambda: [i.name for i in self.connection.image.images()])

    def list_networks(self) -> list[str]:
        return self._call(
            "list networks", lambda: [n.name for n in self.connection.network.networks()]
        )

    # -- servers -----------------------------------------------------------------

    def create_server(self, spec: ServerSpec) -> str:
        """Ask Nova for a server and wait for the scheduler's answer only (seconds,
        not the boot): a full cloud is then `NoValidHost` at once, as with any
        driver, instead of a server that turns to ERROR later.

        A create is retried only when Nova cannot have seen it: a second try after
        a timeout or a 500 could boot the desktop twice."""
        body = {
            "name": spec.name,
            "flavorRef": self._flavor_id(spec.flavor),
            "imageRef": self._image_id(spec.image),
            "networks": self._networks(spec.network),
        }
        if spec.availability_zone:
            body["availability_zone"] = spec.availability_zone
        if spec.host:
            body["host"] = spec.host
        created = self._request(
            "compute",
            "POST",
            "/servers",
            json={"server": body},
            microversion=MV_CREATE,
            what=f"create server {spec.name}",
            only_if_unsent=True,
        )
        server_id = created["server"]["id"]
        logger.info("region %s: server %s (%s) requested", self.region.name, server_id, spec.name)
        self._await_scheduling(server_id)
        return server_id

    def _await_scheduling(self, server_id: str) -> None:
        """Follow a new server until the scheduler has placed it or refused it.
        A `schedule_timeout` of 0 turns the wait off: the boot poller then sees a
        refusal as a server in ERROR with Nova's fault."""
        if self.schedule_timeout <= 0:
            return
        deadline = time.monotonic() + self.schedule_timeout
        while True:
            try:
                info = self.get_server(server_id)
            except CloudError as exc:
                # The server exists; the boot poller will follow it.
                logger.warning(
                    "region %s: could not follow %s: %s", self.region.name, server_id, exc
                )
                return
            if info.status == ServerStatus.ERROR and NO_VALID_HOST in info.fault.lower():
                self._discard(server_id)
                raise NoValidHost(f"Region {self.region.name}: {info.fault}")
            if info.status != ServerStatus.BUILD or info.task_state != "scheduling":
                return
            if time.monotonic() >= deadline:
                logger.info(
                    "region %s: %s still scheduling after %s s; the poller takes over",
                    self.region.name,
                    server_id,
                    self.schedule_timeout,
                )
                return
            self.sleep(self.poll_interval)

    def _discard(self, server_id: str) -> None:
        """Delete a server that never got a host: it holds no capacity but counts
        against the project's quota."""
        try:
            self.delete_server(server_id)
        except CloudError as exc:
            logger.warning("region %s: could not delete %s: %s", self.region.name, server_id, exc)

    def get_server(self, server_id: str) -> ServerInfo:
        server = self._call(
            f"get server {server_id}", lambda: self.connection.compute.get_server(server_id)
        )
        return _server_info(server)

    def list_servers(self) -> list[ServerInfo]:
        servers = self._call(
            "list servers", lambda: list(self.connection.compute.servers(details=True))
        )
        return [_server_info(server) for server in servers]

    def delete_server(self, server_id: str) -> None:
        self._call(
            f"delete server {server_id}",
            lambda: self.connection.compute.delete_server(server_id, ignore_missing=True),
        )

    def start_server(self, server_id: str) -> None:
        self._action(server_id, {"os-start": None}, "start")

    def stop_server(self, server_id: str) -> None:
        self._action(server_id, {"os-stop": None}, "stop")

    def reboot_server(self, server_id: str) -> None:
        """A hard reboot: it is what fixes a hung desktop, and unlike a soft one
        Nova accepts it for a server that is shut off."""
        self._action(server_id, {"reboot": {"type": "HARD"}}, "reboot")

    def rebuild_server(self, server_id: str, image: str) -> None:
        image_id = self._image_id(image)
        self._action(server_id, {"rebuild": {"imageRef": image_id}}, "rebuild")

    # -- consoles ----------------------------------------------------------------

    def _remote_console(self, server_id: str, kind: str, microversion: str) -> str:
        answer = self._request(
            "compute",
            "POST",
            f"/servers/{server_id}/remote-consoles",
            json={"remote_console": {"protocol": "spice", "type": kind}},
            microversion=microversion,
            what=f"{kind} console of server {server_id}",
        )
        return answer["remote_console"]["url"]

    def spice_console(self, server_id: str) -> SpiceConsole:
        """A spice-direct console: Nova issues a token, and the token's connection
        info (admin only) says where the hypervisor serves the display. The token
        is what the SPICE proxy in front of the hypervisors checks, so it is the
        password handed to the client."""
        token = _console_token(self._remote_console(server_id, "spice-direct", MV_SPICE_DIRECT))
        console = self._request(
            "compute",
            "GET",
            f"/os-console-auth-tokens/{token}",
            microversion=MV_SPICE_DIRECT,
            what=f"console token of server {server_id}",
        )["console"]
        return SpiceConsole(
            host=console["host"],
            port=int(console["port"]),
            tls_port=int(console["tls_port"]) if console.get("tls_port") else None,
            password=token,
            expires_at=timezone.now() + timedelta(seconds=settings.SPICE_TICKET_TTL),
        )

    def browser_console_url(self, server_id: str) -> str:
        """A spice-html5 console URL, for an operator's browser."""
        return self._remote_console(server_id, "spice-html5", MV_BROWSER_CONSOLE)

    # -- hosts -------------------------------------------------------------------

    def list_hosts(self) -> list[HostInfo]:
        """Hypervisors with their usage, and the state of their compute service.

        A host is named by its compute service's host, which is what a server's
        host field says (the hypervisor's own name can be a different FQDN)."""
        hypervisors = self._request(
            "compute",
            "GET",
            "/os-hypervisors/detail",
            microversion=MV_HYPERVISORS,
            what="list hypervisors",
        )["hypervisors"]
        services = self._request(
            "compute",
            "GET",
            "/os-services",
            params={"binary": "nova-compute"},
            microversion=MV_HYPERVISORS,
            what="list compute services",
        )["services"]
        by_host = {service["host"]: service for service in services}
        hosts = []
        for hypervisor in hypervisors:
            name = (hypervisor.get("service") or {}).get("host") or hypervisor[
                "hypervisor_hostname"
            ]
            cpu_ratio, ram_ratio = self._allocation_ratios(hypervisor["id"])
            hosts.append(
                HostInfo(
                    name=name,
                    state=_host_state(by_host.get(name)),
                    vcpus=hypervisor["vcpus"],
                    vcpus_used=hypervisor["vcpus_used"],
                    memory_mb=hypervisor["memory_mb"],
                    memory_mb_used=hypervisor["memory_mb_used"],
                    cpu_allocation_ratio=cpu_ratio,
                    ram_allocation_ratio=ram_ratio,
                    running_vms=hypervisor["running_vms"],
                )
            )
        return hosts

    def _allocation_ratios(self, provider_id: str) -> tuple[float, float]:
        """The host's overcommit ratios as Placement enforces them (the compute
        node's uuid is its resource provider's). Without Placement (not in the
        catalog, not allowed) the usual ratios are assumed."""
        try:
            inventories = self._request(
                "placement",
                "GET",
                f"/resource_providers/{provider_id}/inventories",
                what=f"inventories of {provider_id}",
            )["inventories"]
        except CloudError as exc:
            logger.info("region %s: ratios assumed, Placement said: %s", self.region.name, exc)
            return DEFAULT_CPU_ALLOCATION_RATIO, DEFAULT_RAM_ALLOCATION_RATIO
        return (
            _ratio(inventories, "VCPU", DEFAULT_CPU_ALLOCATION_RATIO),
            _ratio(inventories, "MEMORY_MB", DEFAULT_RAM_ALLOCATION_RATIO),
        )

    # -- operations beyond the CloudDriver interface -----------------------------

    def live_migrate(self, server_id: str, host: str | None = None) -> None:
        """Move a running server to another host (the scheduler picks one unless
        `host` is given); it stays ACTIVE and goes through task state migrating."""
        body = {"os-migrateLive": {"host": host or None, "block_migration": "auto"}}
        self._action(server_id, body, "live-migrate", MV_LIVE_MIGRATE)

    def evacuate(self, server_id: str, host: str | None = None) -> None:
        """Rebuild a server of a failed host elsewhere. Nova requires the source
        compute service to be down (or forced down). The server ends SHUTOFF on its
        new host: start it once the old host is known to be fenced."""
        body = {"evacuate": {"host": host} if host else {}}
        self._action(server_id, body, "evacuate", MV_EVACUATE)

    def attach_volume(self, server_id: str, volume_id: str) -> None:
        self._request(
            "compute",
            "POST",
            f"/servers/{server_id}/os-volume_attachments",
            json={"volumeAttachment": {"volumeId": volume_id}},
            microversion=MV_VOLUMES,
            what=f"attach volume {volume_id} to server {server_id}",
        )

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        """Start detaching a volume (Nova finishes it in the background). A volume
        that is not attached is not an error; a missing server is."""
        try:
            self._request(
                "compute",
                "DELETE",
                f"/servers/{server_id}/os-volume_attachments/{volume_id}",
                microversion=MV_VOLUMES,
                what=f"detach volume {volume_id} from server {server_id}",
            )
        except ServerNotFound:
            self.get_server(server_id)  # raises if it is the server that is gone

    def list_volume_attachments(self, server_id: str) -> list[str]:
        """Ids of the volumes attached to a server."""
        answer = self._request(
            "compute",
            "GET",
            f"/servers/{server_id}/os-volume_attachments",
            microversion=MV_VOLUMES,
            what=f"volumes of server {server_id}",
        )
        return [attachment["volumeId"] for attachment in answer["volumeAttachments"]]
