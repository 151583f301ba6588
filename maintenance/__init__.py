"""Maintenance: scheduled install tasks and image roll-outs over sets of VMs.
The app is in place so later work lands in its own rooms; it has no models yet."""
