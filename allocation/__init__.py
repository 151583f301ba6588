"""Allocation: terminals, allocator rules, bindings and the thin-client API."""
