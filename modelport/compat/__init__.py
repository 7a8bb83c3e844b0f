"""Adapters only: other servers' APIs, settings and layouts mapped onto modelport's core (DESIGN.md §5)."""
