"""Where things live, on the host and inside the build containers.

Host side: the checkout holds recipes, templates and the default output
directories; downloads go to a per-user cache shared by all checkouts.

Container side: every build runs at the same fixed paths, because CPython
records its build paths in `_sysconfigdata` and in debug info; building at one
path everywhere keeps outputs independent of where the checkout is.
"""

import errno
import fcntl
import itertools
import os
import stat
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import platformdirs
from rich.markup import escape

from cpython_wasm.errors import UserError
from cpython_wasm.progress import Reporter

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RECIPES_DIR = PROJECT_ROOT / "recipes"
CONTAINERS_DIR = PROJECT_ROOT / "containers"
PACKAGE_DIR = Path(__file__).resolve().parent
# What runs inside the containers (standard library only): the packaging script, the bench runner.
CONTAINER_SCRIPTS_DIR = PACKAGE_DIR / "container"


def display_path(path: Path) -> str:
    """A path as a user should read it in messages: relative to the checkout when inside it."""
    path = Path(path)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def default_cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("cpython-wasm-recipes"))


@dataclass(frozen=True)
class Workspace:
    """The host directories one build reads and writes."""

    cache_dir: Path  # content-addressed downloads, shared between builds
    build_dir: Path  # store of intermediate products, and their logs
    dist_dir: Path  # published artifacts
    lock_dir: Path  # published lockfiles

    @classmethod
    def from_options(cls, cache_dir=None, build_dir=None, dist_dir=None, lock_dir=None,
                     reporter: Reporter | None = None) -> "Workspace":
        """The directories the options name (each checked: see directory_option), or the defaults; none of
        the four may be inside another. Nothing is created here."""
        # CPYTHON_WASM_BUILD_DIR: a store shared by several checkouts (CI jobs, the workflow tests).
        build_option = "--build-dir" if build_dir is not None else "CPYTHON_WASM_BUILD_DIR"
        build_dir = build_dir if build_dir is not None else (os.environ.get("CPYTHON_WASM_BUILD_DIR") or None)
        chosen = {
            "cache_dir": ("--cache-dir", cache_dir, default_cache_dir()),
            "build_dir": (build_option, build_dir, PROJECT_ROOT / "build"),
            "dist_dir": ("--dist-dir", dist_dir, PROJECT_ROOT / "dist"),
            "lock_dir": ("--lock-dir", lock_dir, PROJECT_ROOT / "lockfiles"),
        }
        directories, labels = {}, {}
        for field, (option, value, default) in chosen.items():
            if value is None:
                directories[field], labels[field] = default, f"the default --{field.replace('_', '-')}"
            else:
                directories[field], labels[field] = directory_option(value, option, reporter), option
        refuse_overlaps([(labels[field], path) for field, path in directories.items()])
        return cls(**directories)

    @property
    def store_dir(self) -> Path:
        return self.build_dir / "store"

    @property
    def logs_dir(self) -> Path:
        return self.build_dir / "logs"

    @property
    def locks_dir(self) -> Path:
        return self.build_dir / "locks"

    @property
    def runtime_cache_dir(self) -> Path:
        """What a runtime compiled and keeps between runs (the smoke run's wasmtime CLI): never a product, only
        time saved; the runtime checks each entry before it uses it."""
        return self.build_dir / "runtime-cache"


def usable_directory(path: Path, option: str) -> Path:
    """`path` if it is a directory, or can be made one by this user; else a UserError naming the option."""
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        what = "is" if existing == path else f"would be inside {existing}, which is"
        raise UserError(f"{option} {path} {what} a file, not a directory. Pass a directory (it is created if missing).")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: {existing} is not writable by this user. Pass a directory you can write to, "
                        f"or run as a user who can.")
    return path


def check_option_text(text: str, option: str) -> None:
    """Refuse a path option's value that cannot be meant as a directory: empty, holding a character that is
    not printable (a newline, an escape sequence, a byte that is not UTF-8...), or starting with '-'."""
    if not text:
        raise UserError(f"{option} is empty. Pass a directory (it is created if missing), or leave the option out "
                        f"for the default.")
    unprintable = next((character for character in text if not character.isprintable()), None)
    if unprintable is not None:
        raise UserError(f"{option} {text!r} contains {_character(unprintable)}. Directory options take "
                        f"printable characters only, so that every message, log and lockfile shows the path as it "
                        f"is. Pass a directory whose path has none.")
    if text.startswith("-"):
        raise UserError(f"{option} {text!r} starts with '-', like an option: most likely the value of {option} is "
                        f"missing. Pass `{option} DIR`; to mean a directory whose name starts with '-', write ./{text}.")


def _character(character: str) -> str:
    category = unicodedata.category(character)
    if category == "Cs":  # how Python keeps a byte of a command line that is not UTF-8
        return f"a byte that is not UTF-8 (0x{ord(character) & 0xFF:02X})"
    what = "a control character" if category == "Cc" else unicodedata.name(character, "an unprintable character")
    return f"{what} (U+{ord(character):04X})"


def directory_option(value, option: str, reporter: Reporter | None = None) -> Path:
    """The absolute, resolved directory an option names, after check_option_text and usable_directory.
    When the path goes through a symbolic link, a warning says where it leads before anything is written
    there: a link can send files into a system directory, and a build running as root would write them."""
    text = str(value)
    check_option_text(text, option)
    try:
        given = Path(os.path.abspath(Path(text).expanduser()))
    except RuntimeError:  # ~name of no user
        raise UserError(f"{option} {text}: {text.split('/')[0]} is no user's home directory. Pass a directory.") from None
    try:
        resolved = given.resolve()
        if resolved != given:
            (reporter or Reporter()).warn(escape(f"{option} {given} goes through a symbolic link: it is {resolved}, "
                                                 f"and that is where files are written."))
        return usable_directory(resolved, option)
    except (OSError, RuntimeError) as error:  # a name too long; a loop of links (RuntimeError before Python 3.13)
        reason = getattr(error, "strerror", None) or error
        raise UserError(f"{option} {text}: {reason}. Pass a directory that can be made here.") from None


def refuse_overlaps(directories: list[tuple[str, Path]]) -> None:
    """Refuse two of `directories` ((label, path) pairs) where one is the other or inside it, once links are
    resolved: each is cleaned, locked and listed by rules of its own, and those of one would act on the files
    of the other (SHA256SUMS listing the store, a rebuild's fresh store holding the artifacts...)."""
    for (label, path), (other_label, other) in itertools.combinations(directories, 2):
        real, other_real = Path(os.path.realpath(path)), Path(os.path.realpath(other))
        if other_real.is_relative_to(real) and other_real != real:  # name the inner one first
            (label, path, real), (other_label, other, other_real) = (other_label, other, other_real), (label, path, real)
        if not real.is_relative_to(other_real):
            continue
        relation = "the same directory as" if real == other_real else "inside"
        resolved = "" if (real, other_real) == (Path(path), Path(other)) else f" (once links are resolved: {real} and {other_real})"
        raise UserError(
            f"{label} {path} is {relation} {other_label} {other}{resolved}. The download cache, the store (and its "
            f"logs), the artifacts, the lockfiles and a mirror being filled each need a directory of their own, none "
            f"inside another: each is cleaned, locked and listed by rules of its own. Pass directories apart from one "
            f"another."
        )


# Directories this project owns (the download cache, a mirror that `invoke fetch` fills): it writes and removes
# files only inside them, and follows no symbolic link there.

def describe_entry(path: Path) -> str:
    """What is at `path`, without following a link: "a symbolic link to X", "a directory"..."""
    mode = os.lstat(path).st_mode
    if stat.S_ISLNK(mode):
        return f"a symbolic link to {os.readlink(path)}"
    kinds = {stat.S_ISDIR: "a directory", stat.S_ISREG: "a file", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    return next((kind for test, kind in kinds.items() if test(mode)), "a device")


def owned_subdirectory(root: Path, name: str, owner: str) -> Path:
    """root/name, made a directory if missing. Anything else there (a symbolic link, a file) is refused, never
    followed: `owner` (e.g. "the download cache") writes and removes files only inside `root`."""
    path = root / name
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        pass
    except NotADirectoryError:
        raise UserError(f"{root} is not a directory, so {owner} cannot be kept there. Pass a directory.") from None
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise UserError(
            f"{path} is {describe_entry(path)}, not a directory. {owner[0].upper()}{owner[1:]} keeps its own "
            f"directories in {root} and writes or removes nothing outside it, so it does not follow or replace "
            f"what is there. Remove {path} (it is made again, as a directory) and run again."
        )
    return path


def ensure_inside(path: Path, root: Path) -> Path:
    """`path`, if the directory holding it resolves inside `root`: checked right before a file there is
    replaced or removed (the entry itself, never what a link at it leads to), in case a directory of `root`
    was swapped for a link since it was checked."""
    if not Path(os.path.realpath(path.parent)).is_relative_to(os.path.realpath(root)):
        raise UserError(
            f"{path.parent} leads out of {root} (to {os.path.realpath(path.parent)}): a directory there was replaced "
            f"by a symbolic link. Nothing was written or removed through it. Remove the link (it is made again, as a "
            f"directory) and run again."
        )
    return path


def open_lock_file(path: Path) -> int:
    """A descriptor of the lock file `path`, created if missing, to flock. Never through a symbolic link (opening
    one for writing would truncate or create whatever it leads to); anything but a regular file there is refused
    with a paragraph naming it."""
    if os.path.lexists(path) and not stat.S_ISREG(os.lstat(path).st_mode):
        _refuse_lock(path, describe_entry(path))
    try:  # O_NONBLOCK: a FIFO swapped in since the check does not hang the open
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if error.errno not in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
            raise
        _refuse_lock(path, describe_entry(path))
    if not stat.S_ISREG(os.fstat(descriptor).st_mode):
        os.close(descriptor)
        _refuse_lock(path, describe_entry(path))
    return descriptor


@contextmanager
def exclusive_lock(path: Path):
    """Hold an exclusive lock (flock) on the file `path` (see open_lock_file) until the block ends (or the
    process dies)."""
    descriptor = open_lock_file(path)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _refuse_lock(path: Path, what: str):
    raise UserError(f"The lock file {path} is {what}, not a regular file; a lock is never taken through it. "
                    f"Remove {path} (it is made again) and run again.")

# Inside the containers.
CONTAINER_SOURCE = "/cpython"  # the unpacked CPython source, read-only (build dirs: see drivers.py)
CONTAINER_TOOLS = "/opt/cpython-wasm"  # our in-container helper (package.py), read-only
CONTAINER_OUTPUT = "/out"  # where the packaging phase writes
WASI_SDK_PATH = "/opt/wasi-sdk"  # the SDK directory inside the toolchain image
EMSDK_PATH = "/opt/emsdk"  # emsdk's prebuilt toolchain (provider release) inside the toolchain image
LIBRARIES_DIR = "/opt/libraries"  # each C library's product, at LIBRARIES_DIR/<name> in its stage and the host stage
