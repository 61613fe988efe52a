"""Image builds against Debian's real archive."""

import dataclasses

import pytest

from cpython_wasm.errors import BuildError
from cpython_wasm.recipes.plan import Recipes
from cpython_wasm.stages import images
from cpython_wasm.stages.engine import connect
from cpython_wasm.stages.store import Store
from tests.e2e.conftest import SELECTION

pytestmark = pytest.mark.e2e


def test_a_pin_the_archive_no_longer_serves_is_explained(built, tmp_path):
    plan = Recipes().resolve(*SELECTION)
    gone = dataclasses.replace(plan, base=plan.base.model_copy(
        update={"packages": {**plan.base.packages, "make": "4.4.1-0.gone"}}))
    store = Store(tmp_path / "store", tmp_path / "locks", tmp_path / "logs")
    with pytest.raises(BuildError) as error:
        images.ensure_image(connect(), images.native_spec(gone), store, plan.base.mirror)
    message = str(error.value)
    assert "no longer serves make 4.4.1-0.gone" in message
    assert "--debian-mirror" in message and "snapshot.debian.org" in message
    assert not images.image_exists(connect(), images.native_spec(gone).tag)
