"""malloc_tuning.tune: glibc's malloc thresholds from the malloc_cache_size setting."""

from __future__ import annotations

import platform
import sys

import pytest

from modelport.serving import malloc_tuning
from modelport.settings import SettingsError, ServerSettings, load_server_settings, validate_server_settings

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_zero_leaves_malloc_alone():
    assert malloc_tuning.tune(0) is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_takes_the_thresholds():
    assert malloc_tuning.tune(64 * 1024 * 1024) is True
    assert malloc_tuning.tune(1 << 40) is True  # clamped to glibc's ceilings, not refused


def test_setting_from_env_and_validated(monkeypatch):
    assert ServerSettings().malloc_cache_size == 64 * 1024 * 1024
    monkeypatch.setenv("MODELPORT_MALLOC_CACHE_SIZE", "0")
    assert load_server_settings().malloc_cache_size == 0
    with pytest.raises(SettingsError, match="malloc_cache_size"):
        validate_server_settings(ServerSettings(malloc_cache_size=-1))
