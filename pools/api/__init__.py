"""The ops API for the cloud inventory: regions, hosts, pools and VMs (read only)."""
