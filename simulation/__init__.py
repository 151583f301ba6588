"""Simulations of what OpenStack does not let us change: the hypervisor's CPU
scheduler (Credit and the boosted variant) and placement policies replayed over a
working day."""
