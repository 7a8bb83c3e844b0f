"""Example models served by `modelport serve` with no folder, so a new user sees it work at once."""
