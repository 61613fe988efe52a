"""Fetching: obtain a pinned file's exact bytes, into a content-addressed cache.

    <cache>/sha256/<hash>        verified files, named by their sha256
    <cache>/tmp/                 downloads in progress, <hash>.*.part (renamed into place once verified)
    <cache>/locks/<hash>.lock    one lock per file, so concurrent builds never collide

Where the bytes come from, in order: the cache (re-hashed before every use, so
a file damaged on disk is noticed, removed and fetched again), each `--mirror`
directory (a cache-shaped `sha256/<hash>` or a plain `<file name>`), then each
URL of the pin. Whatever the source, bytes are hashed while they are copied and
stored only when the sha256 matches. A mirror file that does not match is
skipped with a warning (a mirror may hold an older file by the same name) and
the next source is tried; a URL that serves other bytes stops the build, naming
the file, the source, the expected and the actual hash. Nothing is trusted on
its name or size.

The cache owns its directories: `sha256/`, `tmp/` and `locks/` must be real
directories (a symbolic link or a file in their place is refused, never
followed), and nothing is written or removed outside the cache's root.
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
from rich.markup import escape

from cpython_wasm.errors import FetchError, UserError
from cpython_wasm.files import DISK_FULL_ERRNOS, sha256_path, write_atomically
from cpython_wasm.paths import check_option_text, describe_entry, display_path, ensure_inside, exclusive_lock, owned_subdirectory
from cpython_wasm.progress import Reporter
from cpython_wasm.recipes.pins import URL_SCHEMES, PinnedFile

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
        self.pin, self.source, self.received = pin, source, received
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


class Unobtainable(FetchError):
    """No source had the pinned file (with its pinned bytes)."""

    def __init__(self, pin: PinnedFile, tried: list[str], advice: str):
        self.pin = pin
        self.detail = f"{pin.file} (sha256 {pin.sha256}; tried: {'; '.join(tried)})"
        super().__init__(f"Could not obtain {pin.file} (sha256 {pin.sha256}). Tried: {'; '.join(tried)}. {advice}")


# What to try when inputs are missing, beside supplying them.
OTHER_BUILDS = ("To see which builds this machine can make as it is, run `invoke matrix`: its last column checks every "
                "input of every pairing in the cache, the mirrors and at its URLs; another provider (e.g. `--provider "
                "debian`) or SDK may have all of them at hand.")


class MissingInputs(FetchError):
    """Inputs that could not be obtained, all of them: every pin was tried before this was raised."""

    def __init__(self, failures: list[FetchError], total: int, advice: str):
        self.failures = failures
        listed = " ".join(f"({number}) {failure.detail if isinstance(failure, Unobtainable) else failure}"
                          for number, failure in enumerate(failures, 1))
        supply = f"{advice} " if any(isinstance(failure, Unobtainable) for failure in failures) else ""
        super().__init__(f"Could not obtain {len(failures)} of the {total} pinned inputs (every input was tried; these "
                         f"are all that failed): {listed} {supply}{OTHER_BUILDS}")


class _TransientError(Exception):
    """A failure worth retrying on the same URL (reset connection, 5xx, timeout)."""


# What reading a body with urllib3's read1 raises when the connection breaks or falls silent.
_BROKEN_BODY = (urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, urllib3.exceptions.SSLError)


class Fetcher:
    def __init__(self, cache_dir: Path, mirrors=(), reporter: Reporter | None = None,
                 session: requests.Session | None = None, filling: Path | None = None):
        # The root this fetcher owns, links resolved: everything it writes or removes resolves inside it.
        self.cache_dir = Path(os.path.realpath(cache_dir))
        # The mirror `invoke fetch` fills: searched first, and where the messages say to put a missing file.
        self.filling = Path(filling) if filling is not None else None
        self.mirrors = [*filter(None, [self.filling]), *(Path(m) for m in mirrors)]
        self.reporter = reporter or Reporter()
        self.session = session or requests.Session()
        # Where each file of this fetcher came from: "cache", a mirror file, or a URL.
        self.origins: dict[str, str] = {}
        self._check_directories()

    def _check_directories(self) -> None:
        for sub in ("sha256", "tmp", "locks"):
            owned_subdirectory(self.cache_dir, sub, "the download cache")

    def cached_path(self, pin: PinnedFile) -> Path:
        return self.cache_dir / "sha256" / pin.sha256

    def locate(self, pin: PinnedFile) -> str | None:
        """Where the pinned file can be had now, without fetching it: "cache", a mirror file, or a URL that
        answers (the hash is only checked when it is fetched); None if nowhere."""
        local = self.locate_locally(pin)
        if local is not None:
            return local
        for url in pin.urls:
            try:
                if self.session.head(url, timeout=TIMEOUT, allow_redirects=True).status_code == 200:
                    return url
            except requests.RequestException:
                continue
        return None

    def locate_locally(self, pin: PinnedFile) -> str | None:
        """Where the pinned file can be had without the network: "cache" or a mirror file; None if neither."""
        cached = self.cached_path(pin)
        if os.path.lexists(cached) and stat.S_ISREG(os.lstat(cached).st_mode):
            return "cache"
        mirrored = next(self._mirror_candidates(pin), None)
        return None if mirrored is None else str(mirrored)

    def fetch_all(self, pins) -> dict[str, Path]:
        """The cache path of every pin, by sha256. Every pin is tried even after one fails, so that one
        error names all the inputs that cannot be had (MissingInputs); only a full cache disk stops at once."""
        pins = list(pins)
        files, failures = {}, []
        for pin in pins:
            try:
                files[pin.sha256] = self.fetch(pin)
            except CacheDiskFull:
                raise
            except FetchError as error:
                failures.append(error)
        if failures:
            missing = [failure.pin for failure in failures if isinstance(failure, Unobtainable)]
            raise MissingInputs(failures, len(pins), self._advice(missing) if missing else "")
        return files

    def fetch(self, pin: PinnedFile) -> Path:
        """Return the cache path of the pinned file, obtaining it first if needed."""
        target = self.cached_path(pin)
        failures = []
        self._check_directories()  # again: they may have been swapped since this fetcher was made
        with exclusive_lock(self.cache_dir / "locks" / f"{pin.sha256}.lock"):
            # Partial downloads of this pin are left only by a process killed while writing one: every writer
            # holds this lock, which the kernel releases when its process dies, so none is being written now.
            for partial in (self.cache_dir / "tmp").glob(f"{pin.sha256}.*.part"):
                _remove(ensure_inside(partial, self.cache_dir))
            if os.path.lexists(target):
                damage = _damage(target, pin.sha256)
                if damage is None:
                    self.origins[pin.sha256] = "cache"
                    return target
                self.reporter.warn(f"cached {pin.file} ({target}) {damage}: removed, fetching again")
                _remove(ensure_inside(target, self.cache_dir))
                failures.append(f"the cache ({target} {damage}; removed)")
            for candidate in self._mirror_candidates(pin):
                if self._copy_from_mirror(pin, candidate, failures):
                    self.origins[pin.sha256] = str(candidate)
                    return target
            for url in pin.urls:
                try:
                    self._download(pin, url)
                    self.origins[pin.sha256] = url
                    return target
                except (FetchError, UserError):
                    raise
                except Exception as error:  # every way a URL can fail; the next one is tried
                    failures.append(f"{url} ({describe_failure(error)})")
        raise Unobtainable(pin, failures + ([] if pin.urls else ["no URL is listed in the recipe"]), self._advice([pin]))

    def _mirror_candidates(self, pin: PinnedFile):
        """The mirror files that may be `pin`, in the order they are tried (a link is followed: a mirror is
        only read, and what is read is hashed)."""
        for mirror in self.mirrors:
            for candidate in (mirror / "sha256" / pin.sha256, mirror / pin.file):
                if candidate.is_file():
                    yield candidate

    def _copy_from_mirror(self, pin: PinnedFile, candidate: Path, failures: list[str]) -> bool:
        """Store `candidate` if it has the pinned bytes; else warn, note why in `failures`, and return False
        (the next source is tried: a mirror may well hold another release under the same name)."""
        try:
            with open(candidate, "rb") as source:
                self._store(pin, str(candidate), lambda write: _copy(source, write))
            return True
        except HashMismatch as error:
            reason = f"{error.received}, not the pinned bytes"
        except OSError as error:  # unreadable, or gone since it was listed (a full cache is CacheDiskFull)
            reason = f"unreadable: {error.strerror or error}"
        self.reporter.warn(escape(f"{candidate} was skipped: {reason} (the pin of {pin.file} is sha256 {pin.sha256}"
                                  f"{_bytes(pin.size)}); trying the next source"))
        failures.append(f"{candidate} ({reason}; skipped)")
        return False

    def _advice(self, pins: list[PinnedFile]) -> str:
        """How the user can supply the missing `pins`, and where this fetcher looked."""
        searched = ", ".join(map(str, self.mirrors)) or "none given"
        one = len(pins) == 1
        files, them, each = ("this file", "it", "it") if one else ("these files", "them", "each")
        hash_name = pins[0].sha256 if one else "<its sha256>"
        if self.filling is not None:
            where = (f"put {them} in {self.filling} ({each} may keep its name, or be stored as "
                     f"{self.filling}/sha256/{hash_name}) and run `invoke fetch` again")
        else:
            where = (f"put {them} in a directory and pass `--mirror DIR` ({each} may keep its name, or be stored as "
                     f"DIR/sha256/{hash_name})")
        return f"Mirrors searched: {searched}. If you have {files}, {where}; {each} is used only if its sha256 matches."

    def _download(self, pin: PinnedFile, url: str) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return self._attempt(pin, url)
            except (_TransientError, requests.ConnectionError, requests.Timeout, *_BROKEN_BODY) as error:
                if attempt == ATTEMPTS or _unknown_host(error):
                    raise
                pause = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS)) - 1]
                self.reporter.warn(f"{url}: {describe_failure(error)}; retrying in {pause} s")
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
            os.replace(temp_name, ensure_inside(self.cached_path(pin), self.cache_dir))
        except OSError as error:
            if error.errno in DISK_FULL_ERRNOS:
                raise CacheDiskFull(pin, source, self.cache_dir) from error
            raise
        finally:
            if temp_name and os.path.exists(temp_name):
                os.unlink(temp_name)


def fill_mirror(fetcher: Fetcher, pins) -> int:
    """Put every pin into the mirror that `fetcher` fills (`invoke fetch --mirror DIR`), as DIR/sha256/<hash>;
    return how many were not there yet. All are fetched before any is copied, so that a failure names every
    missing one. The mirror is owned like the cache: its sha256/ must be a directory, and every entry there a
    plain file, which is replaced only if its bytes are not the pinned ones."""
    destination = fetcher.filling
    owner = f"the mirror {destination}"
    store = owned_subdirectory(destination, "sha256", owner)
    needed = [pin for pin in pins if not _mirror_holds(store / pin.sha256, pin)]
    files = fetcher.fetch_all(needed)
    for pin in needed:
        owned_subdirectory(destination, "sha256", owner)
        write_atomically(ensure_inside(store / pin.sha256, destination), files[pin.sha256])
    return len(needed)


def _mirror_holds(entry: Path, pin: PinnedFile) -> bool:
    if not os.path.lexists(entry):
        return False
    if not stat.S_ISREG(os.lstat(entry).st_mode):
        raise UserError(f"{display_path(entry)} exists and is not a regular file (it is {describe_entry(entry)}), so "
                        f"{pin.file} cannot be stored there. Remove it (the mirror keeps only plain files) and run again.")
    return sha256_path(entry) == pin.sha256


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


def describe_failure(error: Exception) -> str:
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


def check_mirror_text(text: str) -> None:
    """A --mirror value names a local directory: printable, not option-like (check_option_text), not a URL."""
    check_option_text(text, "--mirror")
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise UserError(
            f"--mirror {text!r} is a URL ({scheme}://); --mirror takes a local directory of pinned files. "
            f"Download the files into a directory and pass that directory. "
            f"Recipes list the {' and '.join(URL_SCHEMES)} URLs that are tried after the mirrors."
        )


def check_mirror_dirs(mirrors) -> list[Path]:
    """Validate --mirror values: existing local directories (URLs are not mirrors here)."""
    checked = []
    for mirror in mirrors or ():
        text = str(mirror)
        check_mirror_text(text)
        path = Path(text).expanduser()
        if not path.is_dir():
            raise UserError(f"--mirror {text!r} is not a directory. Pass an existing directory that holds pinned files.")
        checked.append(path.resolve())
    return checked

