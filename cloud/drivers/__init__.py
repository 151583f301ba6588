"""`driver_for(region)` hands out the driver a region is configured with."""

from cloud.choices import DriverKind
from cloud.errors import CloudError

from .base import CloudDriver, HostInfo, ServerInfo, ServerSpec, SpiceConsole


def driver_for(region) -> CloudDriver:
    if region.driver == DriverKind.SIMULATED:
        from .simulated import SimulatedCloud

        return SimulatedCloud(region)
    if region.driver == DriverKind.OPENSTACK:
        # Imported here so openstacksdk is loaded only by processes that use it.
        from .openstack import OpenStackDriver

        return OpenStackDriver(region)
    raise CloudError(f"Region {region.name} has an unknown driver {region.driver!r}.")


__all__ = [
    "CloudDriver",
    "HostInfo",
    "ServerInfo",
    "ServerSpec",
    "SpiceConsole",
    "driver_for",
]
