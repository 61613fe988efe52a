"""Fetching: obtain a pinned file's exact bytes, into a content-addressed cache.

    <cache>/sha256/<hash>        verified files, named by their sha256
    <cache>/tmp/                 downloads in progress, <hash>.*.part (renamed into place once verified)
    <cache>/locks/<hash>.lock    one lock per file, so concurrent builds never collide

Where the bytes come from, in order: the cache (re-hashed before every use, so
a file damaged on disk is noticed, removed and fetched again), each `--mirror`
directory (a cache-shaped `sha256/<hash>` or a plain `<file name>`), then each
URL of the pin. Whatever the source, bytes are hashed while they are copied and
stored only when the sha256 matches; a mismatch stops the build and names the
file, the source, the expected and the actual hash. Nothing is trusted on its
name or size.
"""

import hashlib
import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

import requests
import urllib3.exceptions
from filelock import FileLock

from .errors import FetchError, UserError
from .package import DISK_FULL_ERRNOS, sha256_path
from .pins import URL_SCHEMES, PinnedFile
from .progress import Reporter

CHUNK = 1 << 20
# Per URL: attempts on transient failures (connection errors, resets, 5xx), and
# the pause before each retry. Then the next URL is tried.
ATTEMPTS = 3
BACKOFF_SECONDS = (1, 3)
TIMEOUT = (10, 60)  # seconds to connect, and of silence while reading
# A read timeout only bounds silence: a server sending a few bytes every minute never trips it and would
# keep a build waiting for days. So an attempt also has a deadline: the time the whole file takes at
# MINIMUM_BYTES_PER_SECOND (far below any usable link; a 120 MB SDK gets half an hour), and never less
# than DEADLINE_FLOOR_SECONDS (connecting and slow starts weigh most on small files). Its size is the
# pinned one, else the announced one, else UNKNOWN_SIZE.
MINIMUM_BYTES_PER_SECOND = 64 * 1024
DEADLINE_FLOOR_SECONDS = 60
UNKNOWN_SIZE = 1 << 30


def _bytes(size: int | None) -> str:
    return "" if size is None else f" ({size} bytes)"


class HashMismatch(FetchError):
    def __init__(self, pin: PinnedFile, source: str, received: str):
        super().__init__(
            f"{pin.file} from {source} does not have the pinned content: expected sha256 {pin.sha256}{_bytes(pin.size)}, "
            f"got {received}. Nothing was stored. Either the source serves different bytes than the recipe "
            f"pins (check where the pin came from: {'; '.join(pin.sha256_sources) or 'no source recorded'}), "
            f"or the file was damaged on the way; remove or fix that source and run again."
        )


class CacheDiskFull(FetchError):
    def __init__(self, pin: PinnedFile, source: str, cache_dir: Path):
        super().__init__(
            f"The disk of the download cache {cache_dir} is full: {pin.file} (sha256 {pin.sha256}{_bytes(pin.size)}) "
            f"from {source} could not be stored, and nothing of it was kept. Free space on that disk, or pass "
            f"--cache-dir with a directory on a disk that has room, and run again."
        )


class _TransientError(Exception):
    """A failure worth retrying on the same URL (reset connection, 5xx, timeout)."""


# What reading a body with urllib3's read1 raises when the connection breaks or falls silent.
_BROKEN_BODY = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.SSLError)


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
        failures = []
        with FileLock(self.cache_dir / "locks" / f"{pin.sha256}.lock"):
            # Partial downloads of this pin are left only by a process killed while writing one: every writer
            # holds this lock, which the kernel releases when its process dies, so none is being written now.
            for partial in (self.cache_dir / "tmp").glob(f"{pin.sha256}.*.part"):
                partial.unlink(missing_ok=True)
            if os.path.lexists(target):
                damage = _damage(target, pin.sha256)
                if damage is None:
                    self.origins[pin.sha256] = "cache"
                    return target
                self.reporter.warn(f"cached {pin.file} ({target}) {damage}: removed, fetching again")
                _remove(target)
                failures.append(f"the cache ({target} {damage}; removed)")
            for mirror in self.mirrors:
                for candidate in (mirror / "sha256" / pin.sha256, mirror / pin.file):
                    if candidate.is_file():
                        with open(candidate, "rb") as source:
                            self._store(pin, str(candidate), lambda write: _copy(source, write))
                        self.origins[pin.sha256] = str(candidate)
                        return target
            for url in pin.urls:
                try:
                    self._download(pin, url)
                    self.origins[pin.sha256] = url
                    return target
                except FetchError:
                    raise
                except Exception as error:  # every way a URL can fail; the next one is tried
                    failures.append(f"{url} ({_describe(error)})")
        tried = "; ".join(failures + ([] if pin.urls else ["no URL is listed in the recipe"]))
        mirrors = ", ".join(map(str, self.mirrors)) or "none given"
        raise FetchError(
            f"Could not obtain {pin.file} (sha256 {pin.sha256}). Tried: {tried}. Mirrors searched: {mirrors}. "
            f"If you have this file, put it in a directory and pass `--mirror DIR` (the file may keep its name, "
            f"or be stored as DIR/sha256/{pin.sha256}); it is used only if its sha256 matches."
        )

    def _download(self, pin: PinnedFile, url: str) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._attempt(pin, url)
            except (_TransientError, requests.ConnectionError, requests.Timeout, *_BROKEN_BODY) as error:
                if attempt == ATTEMPTS or _unknown_host(error):
                    raise
                pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
                self.reporter.warn(f"{url}: {_describe(error)}; retrying in {pause} s")
                time.sleep(pause)

    def _attempt(self, pin: PinnedFile, url: str) -> None:
        started = time.monotonic()
        with self.session.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code >= 500 or response.status_code == 429:
                raise _TransientError(f"HTTP {response.status_code}")
            response.raise_for_status()
            announced = int(response.headers.get("Content-Length") or 0) or None
            size = pin.size or announced
            seconds = max(DEADLINE_FLOOR_SECONDS, (size or UNKNOWN_SIZE) / MINIMUM_BYTES_PER_SECOND)
            with self.reporter.download(pin.file, announced or pin.size) as advance:
                def write_chunks(write):
                    received = 0
                    # read1, not iter_content: iter_content returns only whole chunks, and a trickling
                    # server could take forever to fill one between two looks at the clock.
                    while chunk := response.raw.read1(CHUNK, decode_content=True):
                        write(chunk)
                        advance(len(chunk))
                        received += len(chunk)
                        if time.monotonic() - started > seconds:
                            raise _TransientError(f"too slow: only {received}{f' of {size}' if size else ''} bytes "
                                                  f"within {seconds:g} s, the time allowed for the whole file")
                self._store(pin, url, write_chunks)

    def _store(self, pin: PinnedFile, source: str, produce) -> None:
        """Write bytes from `produce(write)` to a temp file; keep it only if the sha256 matches."""
        digest = hashlib.sha256()
        received = 0
        temp_name = None
        try:
            descriptor, temp_name = tempfile.mkstemp(prefix=f"{pin.sha256}.", suffix=".part", dir=self.cache_dir / "tmp")
            with os.fdopen(descriptor, "wb") as temp:
                def write(chunk: bytes) -> None:
                    nonlocal received
                    received += len(chunk)
                    if pin.size is not None and received > pin.size:  # an endless body would fill the disk
                        raise HashMismatch(pin, source, f"more than the pinned {pin.size} bytes (the transfer was stopped there)")
                    digest.update(chunk)
                    temp.write(chunk)
                produce(write)
                temp.flush()
                os.fsync(temp.fileno())
            if digest.hexdigest() != pin.sha256:
                raise HashMismatch(pin, source, f"sha256 {digest.hexdigest()}{_bytes(received)}")
            os.chmod(temp_name, 0o444)
            os.replace(temp_name, self.cached_path(pin))
        except OSError as error:
            if error.errno in DISK_FULL_ERRNOS:
                raise CacheDiskFull(pin, source, self.cache_dir) from error
            raise
        finally:
            if temp_name and os.path.exists(temp_name):
                os.unlink(temp_name)


def _damage(path: Path, sha256: str) -> str | None:
    """What is wrong with a cache entry, or None if it holds the pinned bytes. Only a regular file is hashed:
    a link could lead anywhere, and hashing a FIFO or a device could wait or read forever."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return f"is a symbolic link (to {os.readlink(path)}), not a file"
    if not stat.S_ISREG(mode):
        return "is not a regular file"
    actual = sha256_path(path)
    return None if actual == sha256 else f"has sha256 {actual}, not {sha256}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


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
        return "too many redirects: a redirect loop?"
    if isinstance(error, requests.ConnectTimeout):
        return f"no connection within {TIMEOUT[0]:g} s"
    if isinstance(error, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError):
        return f"the server sent nothing for {TIMEOUT[1]:g} s"
    if _unknown_host(error):
        return "host name not resolved"
    if isinstance(error, requests.ConnectionError):
        return "connection failed"
    if isinstance(error, urllib3.exceptions.ProtocolError):
        if any(isinstance(arg, ConnectionResetError) for arg in error.args):
            return "connection reset by the server mid-transfer"
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

