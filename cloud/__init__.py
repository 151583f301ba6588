"""The cloud adapter layer: regions, the hosts they report, and the drivers that
every cloud call goes through (OpenStack, and the simulated cloud of the demo)."""
