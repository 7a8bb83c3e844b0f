from ..e2e.serving import served  # noqa: F401 - the `modelport serve` subprocess fixture
