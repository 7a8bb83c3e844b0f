from .serving import served  # noqa: F401 - the fixture, for every e2e test
