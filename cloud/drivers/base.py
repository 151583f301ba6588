"""The one interface through which DeskOps talks to a cloud.

Views, services and tasks never import a cloud SDK: they ask `driver_for(region)`
for a `CloudDriver` and speak in the plain data classes below. Status names are
Nova's (BUILD, ACTIVE, SHUTOFF, REBOOT, ERROR) whatever the driver."""

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from ..errors import CloudError


@dataclass(frozen=True)
class ServerSpec:
    """What to boot: flavor, image and network, optionally pinned to a host."""

    name: str
    flavor: str
    vcpus: int
    memory_mb: int
    image: str
    network: str = ""
    availability_zone: str = ""
    host: str = ""


@dataclass(frozen=True)
class ServerInfo:
    id: str
    name: str
    status: str
    task_state: str | None
    host: str
    ip_address: str | None
    host_status: str = "UP"
    fault: str = ""
    # When the cloud created the server (reconciliation leaves young servers alone).
    created_at: datetime | None = None

    @property
    def is_ready(self) -> bool:
        """Booted and idle: ACTIVE and no task still running on it (a server can be
        ACTIVE while a task such as a rebuild is still in progress)."""
        return self.status == "ACTIVE" and not self.task_state


@dataclass(frozen=True)
class HostInfo:
    name: str
    state: str
    vcpus: int
    vcpus_used: int
    memory_mb: int
    memory_mb_used: int
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    running_vms: int
    # Measured response time of the host in milliseconds, when the cloud knows it.
    response_ms: float | None = None


@dataclass(frozen=True)
class SpiceConsole:
    """What a native SPICE client needs to open a desktop."""

    host: str
    port: int
    tls_port: int | None
    password: str
    expires_at: datetime


class CloudDriver(ABC):
    """Operations on one region. Every method may raise `CloudUnavailable` when the
    cloud cannot be reached; the rest of `cloud.errors` says what else."""

    @abstractmethod
    def create_server(self, spec: ServerSpec) -> str:
        """Start building a server; return its id at once (the build goes on)."""

    @abstractmethod
    def get_server(self, server_id: str) -> ServerInfo:
        """The server as the cloud sees it now; `ServerNotFound` if it is gone."""

    @abstractmethod
    def list_servers(self) -> list[ServerInfo]:
        """Every server of the region (for reconciliation)."""

    @abstractmethod
    def delete_server(self, server_id: str) -> None:
        """Delete a server; deleting one that is already gone is not an error."""

    @abstractmethod
    def start_server(self, server_id: str) -> None: ...

    @abstractmethod
    def stop_server(self, server_id: str) -> None: ...

    @abstractmethod
    def reboot_server(self, server_id: str) -> None: ...

    @abstractmethod
    def rebuild_server(self, server_id: str, image: str) -> None:
        """Reset the server to a fresh copy of `image` (its disk is replaced; its
        id, flavor and address stay). The server goes through REBUILD to ACTIVE."""

    @abstractmethod
    def spice_console(self, server_id: str) -> SpiceConsole:
        """Connection info for a native SPICE client, with a fresh short-lived
        password."""

    @abstractmethod
    def attach_volume(self, server_id: str, volume_id: str) -> None:
        """Attach a data volume (a user's profile and files) to a server."""

    @abstractmethod
    def detach_volume(self, server_id: str, volume_id: str) -> None:
        """Detach a data volume; detaching one that is not attached is not an error."""

    def evacuate(self, server_id: str, host: str | None = None) -> None:
        """Rebuild a server of a failed host on another host, keeping its disks
        (needs shared storage). The source host must be down. The server ends
        SHUTOFF on its new host. Clouds that cannot do it refuse with `CloudError`."""
        raise CloudError("This cloud cannot evacuate servers.")

    def browser_console_url(self, server_id: str) -> str | None:
        """A URL that opens the desktop's console in a browser, where the cloud has
        one (OpenStack's spice-html5); None otherwise."""
        return None

    @abstractmethod
    def list_hosts(self) -> list[HostInfo]:
        """The region's hypervisors with their capacity and usage."""

    def flavor_extra_specs(self, flavor: str) -> dict[str, str]:
        """The extra specs of the flavor of that name (all of them, as strings);
        `CloudError` if the region has no such flavor. Clouds without flavor extra
        specs refuse with `CloudError`."""
        raise CloudError("This cloud has no flavor extra specs.")

    def flavor_update_extra_specs(
        self, flavor: str, *, set_specs: dict[str, str], unset: list[str] | tuple = ()
    ) -> dict[str, str]:
        """Set some extra specs of a flavor and remove others (removing one it does
        not have is not an error); keys named in neither stay as they are. Returns
        the flavor's extra specs afterwards. On Nova they reach a server when it is
        booted (or resized): a running server keeps the copy it was booted with."""
        raise CloudError("This cloud has no flavor extra specs.")
