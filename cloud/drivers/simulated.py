"""The simulated cloud: a small Nova look-alike whose state lives in the database.

It places servers on the host with the most free memory that still fits them under
its overcommit ratios (as Nova's default weigher does), boots them in a time drawn
from the region's range, and injects the faults the region is set to: failed boots,
slow API calls, failing API calls, hosts that are down."""

import ipaddress
import logging
import random
import secrets
import time
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from cloud.choices import HostState, ServerStatus
from cloud.errors import CloudError, CloudUnavailable, NoValidHost, ServerNotFound
from cloud.models import Region, SimHost, SimServer, SimulatedRegion, SimVolume

from .base import CloudDriver, HostInfo, ServerInfo, ServerSpec, SpiceConsole

logger = logging.getLogger(__name__)

SPICE_BASE_PORT = 5900


class SimulatedCloud(CloudDriver):
    def __init__(self, region: Region, rng: random.Random | None = None):
        self.region = region
        self.rng = rng or random.Random()

    # -- fault injection -------------------------------------------------------

    def _simulation(self) -> SimulatedRegion:
        simulation, _ = SimulatedRegion.objects.get_or_create(
            region=self.region,
            defaults={
                "boot_seconds_min": settings.SIM_BOOT_SECONDS_MIN,
                "boot_seconds_max": settings.SIM_BOOT_SECONDS_MAX,
            },
        )
        return simulation

    def _api_call(self, simulation: SimulatedRegion | None = None) -> SimulatedRegion:
        """Every API call starts here: it pays the injected latency and may fail.
        A caller that has already read the region's knobs passes them in."""
        simulation = simulation or self._simulation()
        if simulation.api_latency_ms:
            time.sleep(simulation.api_latency_ms / 1000)
        if simulation.api_failure_rate and self.rng.random() < simulation.api_failure_rate:
            raise CloudUnavailable(f"simulated API failure in region {self.region.name}")
        return simulation

    # -- servers ---------------------------------------------------------------

    def create_server(self, spec: ServerSpec) -> str:
        simulation = self._api_call()
        with transaction.atomic():
            # One placement at a time per region, so two workers cannot both fill
            # the last free slot of a host.
            SimulatedRegion.objects.select_for_update().get(pk=simulation.pk)
            host = self._place(spec)
            boot_seconds = self.rng.uniform(
                simulation.boot_seconds_min, simulation.boot_seconds_max
            )
            server = SimServer.objects.create(
                region=self.region,
                host=host,
                name=spec.name,
                flavor=spec.flavor,
                vcpus=spec.vcpus,
                memory_mb=spec.memory_mb,
                image=spec.image,
                network=spec.network,
                ready_at=timezone.now() + timedelta(seconds=boot_seconds),
                fails_boot=self.rng.random() < simulation.boot_failure_rate,
                spice_port=self._free_spice_port(host),
            )
        logger.info("simulated server %s building on %s", server.id, host.name)
        return str(server.id)

    def _place(self, spec: ServerSpec) -> SimHost:
        hosts = SimHost.objects.filter(region=self.region, state=HostState.UP).annotate(
            used_vcpus=Sum("servers__vcpus"), used_memory=Sum("servers__memory_mb")
        )
        if spec.host:
            hosts = hosts.filter(name=spec.host)
        best, best_free_memory = None, None
        for host in hosts:
            free_vcpus = host.vcpus * host.cpu_allocation_ratio - (host.used_vcpus or 0)
            free_memory = host.memory_mb * host.ram_allocation_ratio - (host.used_memory or 0)
            if free_vcpus < spec.vcpus or free_memory < spec.memory_mb:
                continue
            if best is None or free_memory > best_free_memory:
                best, best_free_memory = host, free_memory
        if best is None:
            raise NoValidHost(
                f"No valid host was found in region {self.region.name} "
                f"for {spec.vcpus} vCPU / {spec.memory_mb} MB."
            )
        return best

    @staticmethod
    def _free_spice_port(host: SimHost) -> int:
        used = set(host.servers.values_list("spice_port", flat=True))
        port = SPICE_BASE_PORT
        while port in used:
            port += 2  # each display takes a plain and a TLS port
        return port

    def _advance(self, server: SimServer) -> SimServer:
        """Move a build or rebuild forward if its boot time has passed."""
        booting = (ServerStatus.BUILD, ServerStatus.REBUILD)
        if server.status in booting and timezone.now() >= server.ready_at:
            if server.fails_boot:
                server.status = ServerStatus.ERROR
                server.fault = "simulated boot failure"
            else:
                server.status = ServerStatus.ACTIVE
                server.ip_address = self._address_for(server)
            server.task_state = ""
            SimServer.objects.filter(pk=server.pk, status__in=booting).update(
                status=server.status,
                fault=server.fault,
                ip_address=server.ip_address,
                task_state="",
            )
        return server

    def _address_for(self, server: SimServer) -> str:
        # A stable private address per server, as DHCP on the tenant network would
        # hand out.
        offset = server.id.int % (2**16 - 2) + 1
        return str(ipaddress.IPv4Address(f"10.{self.region.pk % 250}.0.0") + offset)

    def _server(self, server_id: str) -> SimServer:
        try:
            pk = uuid.UUID(str(server_id))
            server = SimServer.objects.select_related("host").get(pk=pk, region=self.region)
        except (ValueError, SimServer.DoesNotExist) as exc:
            raise ServerNotFound(f"No server {server_id} in {self.region.name}.") from exc
        return self._advance(server)

    @staticmethod
    def _info(server: SimServer) -> ServerInfo:
        return ServerInfo(
            id=str(server.id),
            name=server.name,
            status=server.status,
            task_state=server.task_state or None,
            host=server.host.name,
            ip_address=server.ip_address,
            host_status="UP" if server.host.state == HostState.UP else "DOWN",
            fault=server.fault,
            created_at=server.created_at,
        )

    def get_server(self, server_id: str) -> ServerInfo:
        self._api_call()
        return self._info(self._server(server_id))

    def list_servers(self) -> list[ServerInfo]:
        self._api_call()
        servers = SimServer.objects.filter(region=self.region).select_related("host")
        return [self._info(self._advance(server)) for server in servers]

    def delete_server(self, server_id: str) -> None:
        self._api_call()
        try:
            pk = uuid.UUID(str(server_id))
        except ValueError:
            return
        SimServer.objects.filter(pk=pk, region=self.region).delete()

    def _set_status(self, server_id: str, status: str, *, allowed: set[str]) -> None:
        server = self._server(server_id)
        if server.status not in allowed:
            raise CloudError(f"Cannot do that to server {server_id} while it is {server.status}.")
        SimServer.objects.filter(pk=server.pk).update(status=status)

    def start_server(self, server_id: str) -> None:
        self._api_call()
        self._set_status(server_id, ServerStatus.ACTIVE, allowed={ServerStatus.SHUTOFF})

    def stop_server(self, server_id: str) -> None:
        self._api_call()
        self._set_status(server_id, ServerStatus.SHUTOFF, allowed={ServerStatus.ACTIVE})

    def reboot_server(self, server_id: str) -> None:
        # A simulated reboot is instant: the server stays ACTIVE.
        self._api_call()
        self._set_status(
            server_id, ServerStatus.ACTIVE, allowed={ServerStatus.ACTIVE, ServerStatus.SHUTOFF}
        )

    def rebuild_server(self, server_id: str, image: str) -> None:
        simulation = self._api_call()
        server = self._server(server_id)
        if server.status not in (ServerStatus.ACTIVE, ServerStatus.SHUTOFF, ServerStatus.ERROR):
            raise CloudError(f"Cannot rebuild server {server_id} while it is {server.status}.")
        boot_seconds = self.rng.uniform(simulation.boot_seconds_min, simulation.boot_seconds_max)
        SimServer.objects.filter(pk=server.pk).update(
            status=ServerStatus.REBUILD,
            task_state="rebuild_spawning",
            image=image,
            fault="",
            ready_at=timezone.now() + timedelta(seconds=boot_seconds),
            fails_boot=self.rng.random() < simulation.boot_failure_rate,
        )

    def evacuate(self, server_id: str, host: str | None = None) -> None:
        """As Nova does since microversion 2.95: only from a host that is down, to
        the up host with the most free memory, and the server ends SHUTOFF there."""
        self._api_call()
        server = self._server(server_id)
        if server.host.state == HostState.UP:
            raise CloudError(f"Compute service of {server.host.name} is still in use.")
        spec = ServerSpec(
            name=server.name,
            flavor=server.flavor,
            vcpus=server.vcpus,
            memory_mb=server.memory_mb,
            image=server.image,
            host=host or "",
        )
        with transaction.atomic():
            SimulatedRegion.objects.select_for_update().get(region=self.region)
            target = self._place(spec)
            SimServer.objects.filter(pk=server.pk).update(
                host=target,
                status=ServerStatus.SHUTOFF,
                task_state="",
                spice_port=self._free_spice_port(target),
            )
        logger.info("simulated server %s evacuated to %s", server.id, target.name)

    def spice_console(self, server_id: str) -> SpiceConsole:
        # Each connect asks for a console: the server, its host and the region's
        # fault knobs are read together, and the call is then paid for and may fail
        # (an unknown server included) just as every other call does.
        try:
            server = SimServer.objects.select_related("host", "region__simulation").get(
                pk=uuid.UUID(str(server_id)), region=self.region
            )
        except (ValueError, SimServer.DoesNotExist):
            server = None
        known = getattr(server.region, "simulation", None) if server is not None else None
        self._api_call(known)
        if server is None:
            raise ServerNotFound(f"No server {server_id} in {self.region.name}.")
        server = self._advance(server)
        if server.status != ServerStatus.ACTIVE:
            raise CloudError(f"Server {server_id} has no console while it is {server.status}.")
        return SpiceConsole(
            host=server.host.address,
            port=server.spice_port,
            tls_port=server.spice_port + 1,
            password=secrets.token_urlsafe(12),
            expires_at=timezone.now() + timedelta(seconds=settings.SPICE_TICKET_TTL),
        )

    # -- volumes ---------------------------------------------------------------

    def _volume(self, volume_id: str) -> SimVolume:
        try:
            return SimVolume.objects.get(pk=uuid.UUID(str(volume_id)), region=self.region)
        except (ValueError, SimVolume.DoesNotExist) as exc:
            raise CloudError(f"No volume {volume_id} in {self.region.name}.") from exc

    def attach_volume(self, server_id: str, volume_id: str) -> None:
        self._api_call()
        server = self._server(server_id)
        with transaction.atomic():
            volume = self._volume(volume_id)
            if volume.server_id and volume.server_id != server.pk:
                raise CloudError(f"Volume {volume_id} is attached to another server.")
            SimVolume.objects.filter(pk=volume.pk).update(server=server)

    def detach_volume(self, server_id: str, volume_id: str) -> None:
        self._api_call()
        volume = self._volume(volume_id)
        SimVolume.objects.filter(pk=volume.pk, server_id=self._server(server_id).pk).update(
            server=None
        )

    # -- flavors ---------------------------------------------------------------

    def flavor_extra_specs(self, flavor: str) -> dict[str, str]:
        """The simulated cloud knows every flavor a pool names; one that was never
        given extra specs has none."""
        simulation = self._api_call()
        return dict(simulation.flavor_extra_specs.get(flavor, {}))

    def flavor_update_extra_specs(
        self, flavor: str, *, set_specs: dict[str, str], unset: list[str] | tuple = ()
    ) -> dict[str, str]:
        self._api_call()
        with transaction.atomic():
            # Locked: two updates of different flavors must not lose each other's.
            simulation = SimulatedRegion.objects.select_for_update().get(region=self.region)
            specs = dict(simulation.flavor_extra_specs.get(flavor, {}))
            specs.update({key: str(value) for key, value in set_specs.items()})
            for key in unset:
                specs.pop(key, None)
            simulation.flavor_extra_specs = {**simulation.flavor_extra_specs, flavor: specs}
            simulation.save(update_fields=["flavor_extra_specs"])
        return specs

    # -- hosts -----------------------------------------------------------------

    def list_hosts(self) -> list[HostInfo]:
        self._api_call()
        hosts = SimHost.objects.filter(region=self.region).annotate(
            used_vcpus=Sum("servers__vcpus"),
            used_memory=Sum("servers__memory_mb"),
            server_count=Count("servers"),
        )
        return [
            HostInfo(
                name=host.name,
                state=host.state,
                vcpus=host.vcpus,
                vcpus_used=host.used_vcpus or 0,
                memory_mb=host.memory_mb,
                memory_mb_used=host.used_memory or 0,
                cpu_allocation_ratio=host.cpu_allocation_ratio,
                ram_allocation_ratio=host.ram_allocation_ratio,
                running_vms=host.server_count,
                response_ms=host.response_ms,
            )
            for host in hosts
        ]
