"""Fetching: obtain a pinned file's exact bytes, into a content-addressed cache.

    <cache>/sha256/<hash>        verified files, named by their sha256
    <cache>/tmp/                 downloads in progress (renamed into place once verified)
    <cache>/locks/<hash>.lock    one lock per file, so concurrent builds never collide

Where the bytes come from, in order: the cache (re-hashed before every use, so
a file damaged on disk is noticed and fetched again), each `--mirror`
directory (a cache-shaped `sha256/<hash>` or a plain `<file name>`), then each
URL of the pin. Whatever the source, bytes are hashed while they are copied and
stored only when the sha256 matches; a mismatch stops the build and names the
file, the source, the expected and the actual hash. Nothing is trusted on its
name or size.
"""

import hashlib
import os
import tempfile
import time
from pathlib import Path

import requests
import urllib3.exceptions
from filelock import FileLock

from .errors import FetchError, UserError
from .package import sha256_path
from .pins import URL_SCHEMES, PinnedFile
from .progress import Reporter

CHUNK = 1 << 20
# Per URL: attempts on transient failures (connection errors, resets, 5xx), and
# the pause before each retry. Then the next URL is tried.
ATTEMPTS = 3
BACKOFF_SECONDS = (1, 3)
TIMEOUT = (10, 60)  # seconds to connect, and of silence while reading


class HashMismatch(FetchError):
    def __init__(self, pin: PinnedFile, source: str, actual: str):
        super().__init__(
            f"{pin.file} from {source} does not have the pinned content: expected sha256 {pin.sha256}, "
            f"got {actual}. Nothing was stored. Either the source serves different bytes than the recipe "
            f"pins (check where the pin came from: {'; '.join(pin.sha256_sources) or 'no source recorded'}), "
            f"or the file was damaged on the way; remove or fix that source and run again."
        )


class _TransientError(Exception):
    """A failure worth retrying on the same URL (reset connection, 5xx, timeout)."""


class Fetcher:
    def __init__(self, cache_dir: Path, mirrors=(), reporter: Reporter | None = None,
                 session: requests.Session | None = None):
        self.cache_dir = Path(cache_dir)
        self.mirrors = [Path(m) for m in mirrors]
        self.reporter = reporter or Reporter()
        self.session = session or requests.Session()
        # Where each file of this fetcher came from: "cache", a mirror file, or a URL.
        self.origins: dict[str, str] = {}
        for sub in ("sha256", "tmp", "locks"):
            (self.cache_dir / sub).mkdir(parents=True, exist_ok=True)

    def cached_path(self, pin: PinnedFile) -> Path:
        return self.cache_dir / "sha256" / pin.sha256

    def locate(self, pin: PinnedFile) -> str | None:
        """Where the pinned file can be had now, without fetching it: "cache", a mirror file, or a URL that
        answers (the hash is only checked when it is fetched); None if nowhere."""
        if self.cached_path(pin).is_file():
            return "cache"
        for mirror in self.mirrors:
            for candidate in (mirror / "sha256" / pin.sha256, mirror / pin.file):
                if candidate.is_file():
                    return str(candidate)
        for url in pin.urls:
            try:
                if self.session.head(url, timeout=TIMEOUT, allow_redirects=True).status_code == 200:
                    return url
            except requests.RequestException:
                continue
        return None

    def fetch_all(self, pins) -> dict[str, Path]:
        return {pin.sha256: self.fetch(pin) for pin in pins}

    def fetch(self, pin: PinnedFile) -> Path:
        """Return the cache path of the pinned file, obtaining it first if needed."""
        target = self.cached_path(pin)
        with FileLock(self.cache_dir / "locks" / f"{pin.sha256}.lock"):
            if target.exists():
                actual = sha256_path(target)
                if actual == pin.sha256:
                    self.origins[pin.sha256] = "cache"
                    return target
                self.reporter.warn(f"cached {pin.file} ({target}) has sha256 {actual}, not {pin.sha256}: removed, fetching again")
                target.unlink()
            for mirror in self.mirrors:
                for candidate in (mirror / "sha256" / pin.sha256, mirror / pin.file):
                    if candidate.is_file():
                        with open(candidate, "rb") as source:
                            self._store(pin, str(candidate), lambda write: _copy(source, write))
                        self.origins[pin.sha256] = str(candidate)
                        return target
            failures = []
            for url in pin.urls:
                try:
                    self._download(pin, url)
                    self.origins[pin.sha256] = url
                    return target
                except FetchError:
                    raise
                except Exception as error:  # every way a URL can fail; the next one is tried
                    failures.append(f"{url} ({_describe(error)})")
        tried = "; ".join(failures) or "no URL is listed in the recipe"
        mirrors = ", ".join(map(str, self.mirrors)) or "none given"
        raise FetchError(
            f"Could not obtain {pin.file} (sha256 {pin.sha256}). Tried: {tried}. Mirrors searched: {mirrors}. "
            f"If you have this file, put it in a directory and pass `--mirror DIR` (the file may keep its name, "
            f"or be stored as DIR/sha256/{pin.sha256}); it is used only if its sha256 matches."
        )

    def _download(self, pin: PinnedFile, url: str) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self.session.get(url, stream=True, timeout=TIMEOUT) as response:
                    if response.status_code >= 500 or response.status_code == 429:
                        raise _TransientError(f"HTTP {response.status_code}")
                    response.raise_for_status()
                    total = int(response.headers.get("Content-Length") or 0) or pin.size
                    with self.reporter.download(pin.file, total) as advance:
                        def write_chunks(write):
                            for chunk in response.iter_content(CHUNK):
                                write(chunk)
                                advance(len(chunk))
                        self._store(pin, url, write_chunks)
                    return
            except (_TransientError, requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError) as error:
                if attempt == ATTEMPTS or _unknown_host(error):
                    raise
                pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
                self.reporter.warn(f"{url}: {_describe(error)}; retrying in {pause} s")
                time.sleep(pause)

    def _store(self, pin: PinnedFile, source: str, produce) -> None:
        """Write bytes from `produce(write)` to a temp file; keep it only if the sha256 matches."""
        digest = hashlib.sha256()
        descriptor, temp_name = tempfile.mkstemp(prefix=f"{pin.sha256[:16]}.", suffix=".part", dir=self.cache_dir / "tmp")
        try:
            with os.fdopen(descriptor, "wb") as temp:
                def write(chunk: bytes) -> None:
                    digest.update(chunk)
                    temp.write(chunk)
                produce(write)
                temp.flush()
                os.fsync(temp.fileno())
            if digest.hexdigest() != pin.sha256:
                raise HashMismatch(pin, source, digest.hexdigest())
            os.chmod(temp_name, 0o444)
            os.replace(temp_name, self.cached_path(pin))
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)


def _copy(source, write) -> None:
    while chunk := source.read(CHUNK):
        write(chunk)


def _unknown_host(error: Exception) -> bool:
    """A host name that does not resolve will not resolve a second later: no retry."""
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NameResolutionError)


def _describe(error: Exception) -> str:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code}"
    if isinstance(error, requests.TooManyRedirects):
        return "too many redirects"
    if isinstance(error, requests.Timeout):
        return "timed out"
    if _unknown_host(error):
        return "host name not resolved"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection broke off mid-transfer"
    return str(error) or type(error).__name__


def check_mirror_dirs(mirrors) -> list[Path]:
    """Validate --mirror values: existing local directories (URLs are not mirrors here)."""
    checked = []
    for mirror in mirrors or ():
        text = str(mirror)
        if "://" in text:
            scheme = text.split("://", 1)[0]
            raise UserError(
                f"--mirror {text!r} is a URL ({scheme}://); --mirror takes a local directory of pinned files. "
                f"Download the files into a directory and pass that directory. "
                f"Recipes list the {' and '.join(URL_SCHEMES)} URLs that are tried after the mirrors."
            )
        path = Path(text).expanduser()
        if not path.is_dir():
            raise UserError(f"--mirror {text!r} is not a directory. Pass an existing directory that holds pinned files.")
        checked.append(path.resolve())
    return checked

