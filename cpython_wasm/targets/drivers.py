"""Drivers: how each generation of CPython's own build helpers is run.

A recipe names its line's helper; the build runs that helper's own
subcommands, one container phase each, so the result is what upstream's
recipe gives. What differs between generations, and is described here:

    helper                      lines       build python at              host build at
    Tools/wasm/wasm_build.py    3.11 3.12   builddir/build               builddir/wasi
    Tools/wasm/wasi.py          3.13        cross-build/build            cross-build/<host triple>
    Tools/wasm/wasi             3.14        cross-build/<build triple>   cross-build/<host triple>
    Platforms/WASI              3.15        cross-build/<build triple>   cross-build/<host triple>

Every helper runs the finished python.wasm through its default host runner,
`wasmtime run ...`: the toolchain images install the wasmtime CLI as
`wasmtime` (inputs/tools.py), so no helper needs a --host-runner of ours.
(3.11's runner names `--mapdir`, which the CLI has since dropped; its helper
records the runner in the build's Makefile but never runs it.)

For Emscripten, 3.11-3.13 have no helper that builds offline with a given
toolchain; they are built as Tools/wasm/README.md documents: `emconfigure
configure` and `emmake make` in cross-build/<host triple>, with the
config.site the release ships. 3.14+ are built by their own helper,
Platforms/emscripten: its configure-host and make-host, with Node from the
toolchain image as host runner (never nvm) and the libraries its
make-dependencies would download built beforehand as library stages. Either
way the build python is the line's WASI helper's, with the very same
commands, so it is one store product shared by both targets (mounted where
Platforms/emscripten looks for it, cross-build/build).

The source is mounted read-only: what the helpers would create in it, the
output directories (mount points here) and Modules/Setup.local, is created
when the source is unpacked, with each helper's own marker text.
"""

from dataclasses import dataclass

from cpython_wasm.errors import UserError
from cpython_wasm.paths import CONTAINER_SOURCE
from cpython_wasm.recipes.grammar import grammar

# BUILD_GNU_TYPE of Debian's python3, which runs the helpers; 3.14+ name the
# build python's directory after it.
BUILD_TRIPLES = {"x86_64": "x86_64-pc-linux-gnu", "aarch64": "aarch64-unknown-linux-gnu"}


@dataclass(frozen=True)
class Driver:
    helper: str  # path in the source tree
    build_python_dir: str  # relative to the source tree
    host_dir: str  # relative to the source tree
    setup_local: str  # what the helper writes into Modules/Setup.local when it is missing
    subcommands: dict[str, tuple[str, ...]]  # phase -> the helper's arguments for it
    takes_configure_args: bool = True
    # Where the host phases look for the build python, if not where it is built (relative to the source tree).
    build_python_mount: str | None = None

    def path(self, relative: str) -> str:
        return f"{CONTAINER_SOURCE}/{relative}"

    @property
    def build_python(self) -> str:
        return self.path(f"{self.build_python_dir}/python")

    @property
    def host_build_python_dir(self) -> str:
        """Where the host stage mounts the build python, relative to the source tree."""
        return self.build_python_mount or self.build_python_dir

    def command(self, phase: str, configure_args=()) -> list[str]:
        """The phase's command line: Debian's python3 running the helper."""
        extra = ["--", *configure_args] if configure_args and phase == "configure-host" else []
        return ["python3", self.path(self.helper), *self.subcommands[phase], *extra]

    def workdir(self, phase: str) -> str:
        return CONTAINER_SOURCE

    @property
    def host_environment(self) -> dict[str, str]:
        """What the host phases need in their environment, for this way of building."""
        return {}

    def check_configure_args(self, configure_args) -> None:
        if configure_args and not self.takes_configure_args:
            raise UserError(
                f"{self.helper} passes no extra arguments to configure, so this line cannot take "
                f"{' '.join(configure_args)}. Drop --configure-arg (and configure_host_args in the recipe)."
            )


# An extra argument for the host `configure` (`invoke build --configure-arg`, or one a lockfile records
# beyond its recipe's): an option, --name or --name=value, one word whose value has no character a shell,
# make or config.status reads specially. Never NAME=VALUE, which the recipes' own arguments may be
# (ZLIB_CFLAGS=... for Emscripten, grammar.check_configure_arg): configure evaluates such assignments
# (CC=, CFLAGS=) in its shell, so only a reviewed recipe sets them.
check_extra_configure_arg = grammar(
    r"--[a-z0-9][a-z0-9-]*(?:=[A-Za-z0-9_./:,+-]*)?",
    "an option, --name or --name=value (a lowercase name; a value of letters, digits and _ . / : , + -, no "
    "space), not an assignment such as CC=... or CFLAGS=..., which configure evaluates in its shell", 256,
)


def check_extra_configure_args(configure_args) -> None:
    """`invoke build --configure-arg` values: each an option configure takes as data (check_extra_configure_arg)."""
    for argument in configure_args:
        try:
            check_extra_configure_arg(argument)
        except ValueError as error:
            raise UserError(f"--configure-arg: {error}. Pass configure options only; a compiler or flags belong "
                            f"in the recipes (configure_host_args, host_environment).") from None


BUILD_PYTHON_PHASES = ("configure-build-python", "make-build-python")
HOST_PHASES = ("configure-host", "make-host")


@dataclass(frozen=True)
class EmscriptenDriver(Driver):
    """What every Emscripten build's host phases share."""

    @property
    def host_environment(self) -> dict[str, str]:
        # make zips the standard library with the build python (Tools/wasm/wasm_assets.py, 3.14+'s
        # Platforms/emscripten/wasm_assets.py), which compiles it next to the read-only source by default.
        return {"PYTHONPYCACHEPREFIX": self.path(f"{self.host_dir}/pycache")}


@dataclass(frozen=True)
class EmscriptenConfigureDriver(EmscriptenDriver):
    """Emscripten for 3.11-3.13: configure and make, as Tools/wasm/README.md documents.

    `helper` and `subcommands` are the line's WASI helper's, for the build python only."""

    build_triple: str = ""
    host_triple: str = ""

    def command(self, phase: str, configure_args=()) -> list[str]:
        if phase in BUILD_PYTHON_PHASES:
            return super().command(phase)
        if phase == "configure-host":
            return ["env", f"CONFIG_SITE={self.path('Tools/wasm/config.site-wasm32-emscripten')}",
                    "emconfigure", self.path("configure"), f"--host={self.host_triple}",
                    f"--build={self.build_triple}", f"--with-build-python={self.build_python}", *configure_args]
        if phase == "make-host":
            # The job count is the machine's, not part of the command: products do not depend on it.
            return ["sh", "-c", 'exec emmake make -j"$(nproc)"']
        raise KeyError(phase)

    def workdir(self, phase: str) -> str:
        return self.path(self.host_dir) if phase in HOST_PHASES else CONTAINER_SOURCE



@dataclass(frozen=True)
class EmscriptenHelperDriver(EmscriptenDriver):
    """Emscripten for 3.14+: CPython's own Platforms/emscripten, its configure-host and make-host.

    `helper`, `build_python_dir` and the build python's subcommands are the line's WASI helper's, so the build
    python is that one store product; `emscripten_helper` is the one the host phases run."""

    emscripten_helper: str = ""

    @property
    def host_environment(self) -> dict[str, str]:
        # Its wasm_assets.py zips a .pyc of each module with PyZipFile, which takes a .pyc already in the cache
        # where it finds one. The build python imports the generated _sysconfigdata_*.py during the build, and an
        # import writes a .pyc recording the source's mtime, the time of the build: that made the zip, hence the
        # artifact, differ from build to build. Imports write none here, so every .pyc of the zip is compiled by
        # py_compile under SOURCE_DATE_EPOCH, checked by hash, the same bytes every time.
        return {**super().host_environment, "PYTHONDONTWRITEBYTECODE": "1"}

    def command(self, phase: str, configure_args=()) -> list[str]:
        if phase in BUILD_PYTHON_PHASES:
            return super().command(phase)
        if phase == "configure-host":
            # Node of the toolchain image runs python.mjs; otherwise the helper installs one with nvm.
            return ["python3", self.path(self.emscripten_helper), "configure-host", "--host-runner", "node",
                    *(["--", *configure_args] if configure_args else [])]
        if phase == "make-host":
            return ["python3", self.path(self.emscripten_helper), "make-host"]
        raise KeyError(phase)


# Where Platforms/emscripten puts its builds, relative to the source tree (its get_build_paths).
EMSCRIPTEN_HELPER_BUILD_PYTHON = "cross-build/build"
EMSCRIPTEN_HELPER_HOST_DIR = "cross-build/wasm32-emscripten/build/python"


def build_triple(helper: str, arch: str) -> str:
    if arch not in BUILD_TRIPLES:
        raise UserError(f"{helper} names its build directory after the build triple, unknown for {arch!r} "
                        f"(known: {', '.join(BUILD_TRIPLES)}); add it to BUILD_TRIPLES in cpython_wasm/targets/drivers.py.")
    return BUILD_TRIPLES[arch]


def driver_for(helper: str, host_triple: str, arch: str) -> Driver:
    same_names = {phase: (phase,) for phase in (*BUILD_PYTHON_PHASES, *HOST_PHASES)}
    if helper == "Tools/wasm/wasm_build.py":
        return Driver(
            helper, "builddir/build", "builddir/wasi", setup_local="",
            subcommands={"configure-build-python": ("build", "configure"), "make-build-python": ("build", "compile"),
                         "configure-host": ("wasi", "configure"), "make-host": ("wasi", "compile")},
            takes_configure_args=False,
        )
    if helper == "Tools/wasm/wasi.py":
        return Driver(helper, "cross-build/build", f"cross-build/{host_triple}",
                      setup_local="# Generated by Tools/wasm/wasi.py\n", subcommands=same_names)
    if helper in ("Tools/wasm/wasi", "Platforms/WASI"):
        return Driver(helper, f"cross-build/{build_triple(helper, arch)}", f"cross-build/{host_triple}",
                      setup_local=f"# Generated by {helper} .\n# Required to statically build extension modules.",
                      subcommands=same_names)
    raise UserError(f"No driver for the build helper {helper!r}.")
