"""Fixtures shared by the unit tests."""

import pytest

from cpython_wasm.records.lock import read_lock
from tests.helpers import COMMITTED_LOCKFILE


@pytest.fixture
def lock():
    """The committed lockfile of the README's build, read afresh (tests may change it)."""
    return read_lock(COMMITTED_LOCKFILE)
