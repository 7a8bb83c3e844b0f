"""Model families the runtimes build on (no routes)."""
