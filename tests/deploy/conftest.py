from tests.compat.kserve_peer import kserve_python  # noqa: F401 - the KServe SDK validates KServe resources
