"""Staff pages of the pools app, one module per object: regions, hosts, pools
(with their calendar and pause state), VMs (with why their host was chosen) and
the scheduling policy. Every change goes through an audited service."""
