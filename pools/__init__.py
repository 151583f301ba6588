"""VM pools: specs, the VM lifecycle, refill and boot tracking."""
