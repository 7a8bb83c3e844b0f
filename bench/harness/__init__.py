"""The modelport side-by-side benchmark harness (stdlib only). Entry point: bench/run.py."""
