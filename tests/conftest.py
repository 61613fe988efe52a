"""Fixtures shared by the unit tests."""

import pytest
from hypothesis import settings

from cpython_wasm.records.lock import read_lock
from tests.helpers import COMMITTED_LOCKFILE

# No test is timed (speed is `invoke bench`'s to check): hypothesis's 200 ms per example would fail tests for
# how busy the machine is, and the unit tests run beside the e2e builds.
settings.register_profile("untimed", deadline=None)
settings.load_profile("untimed")


@pytest.fixture
def lock():
    """The committed lockfile of the README's build, read afresh (tests may change it)."""
    return read_lock(COMMITTED_LOCKFILE)
