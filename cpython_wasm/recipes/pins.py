"""A pinned file: the unit of every input, named by its sha256.

Like a Nix fixed-output derivation, a pinned file is identified by its content
hash alone; its URLs are only places where those bytes may be found. Recipes
declare pinned files; `fetch` obtains and verifies them.
"""

# URL_SCHEMES and the grammars lock.py and fetch.py import from here live in grammar.py.
from pydantic import BaseModel, ConfigDict

from cpython_wasm.recipes.grammar import URL_SCHEMES, FileName, Sha256, Size, Text, Url  # noqa: F401


class Model(BaseModel):
    """Recipe data: immutable, and unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PinnedFile(Model):
    file: FileName  # the name it has in build contexts and messages
    sha256: Sha256
    size: Size | None = None
    urls: tuple[Url, ...] = ()
    # Where the hash was found: a pin is only as good as its sources.
    sha256_sources: tuple[Text, ...] = ()
