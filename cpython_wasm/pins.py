"""A pinned file: the unit of every input, named by its sha256.

Like a Nix fixed-output derivation, a pinned file is identified by its content
hash alone; its URLs are only places where those bytes may be found. Recipes
declare pinned files; `fetch` obtains and verifies them.
"""

import re
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict

_SHA256 = re.compile(r"[0-9a-f]{64}")
_PINNED_IMAGE = re.compile(r"[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}")
URL_SCHEMES = ("http", "https")


def check_sha256(value: str) -> str:
    if not _SHA256.fullmatch(value):
        raise ValueError(f"expected a sha256 (64 lowercase hex digits), got {value!r}")
    return value


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in URL_SCHEMES or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
    return value


def check_pinned_image(value: str) -> str:
    if not _PINNED_IMAGE.fullmatch(value):
        raise ValueError(
            f"expected an image pinned by digest, like debian:trixie-slim@sha256:<64 hex digits>, got {value!r}"
        )
    return value


def check_file_name(value: str) -> str:
    if not value or "/" in value or value in (".", ".."):
        raise ValueError(f"expected a plain file name (no '/'), got {value!r}")
    return value


Sha256 = Annotated[str, AfterValidator(check_sha256)]
Url = Annotated[str, AfterValidator(check_url)]
FileName = Annotated[str, AfterValidator(check_file_name)]
PinnedImage = Annotated[str, AfterValidator(check_pinned_image)]


class Model(BaseModel):
    """Recipe data: immutable, and unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PinnedFile(Model):
    file: FileName  # the name it has in build contexts and messages
    sha256: Sha256
    size: int | None = None
    urls: tuple[Url, ...] = ()
    # Where the hash was found: a pin is only as good as its sources.
    sha256_sources: tuple[str, ...] = ()
