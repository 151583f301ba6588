"""The monitoring ops API (staff only)."""
