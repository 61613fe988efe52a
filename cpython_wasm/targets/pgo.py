"""Profile-guided optimisation of python.wasm: three stages before the host build, and what it adds.

    profile-runtime    compiler-rt's profile runtime for the toolchain's clang, from the LLVM source the
                       toolchain recipe pins, with its patch (containers/files/build-profile-runtime.sh):
                       one product for every release built with the toolchain
    host-instrumented  python.wasm configured and built as the host stage is, with clang's instrumentation
                       (-fprofile-instr-generate) and the runtime linked in
    profile            CPython's own training task (its Makefile's PROFILE_TASK) run on it under the image's
                       wasmtime CLI, the raw profile merged by llvm-profdata (containers/files/train-profile.sh)
    host               python.wasm built again with -fprofile-instr-use of that profile (target.py)

The training run is not deterministic: the test suite's timing loops and random data move the counts, so two
trainings give two profiles, and two python.wasm. The profile stage is therefore the one stage whose product is
not a function of its value: the lockfile records the profile's sha256 (`build.pgo`), the build publishes the
profile beside the artifact and the lockfile, and a rebuild puts that published file in its new store as the
profile stage's product (checked against the lockfile first) instead of training again (Build.substitute_profile),
as Nix substitutes a derivation's output from a binary cache. Everything after it is deterministic again.
"""

from dataclasses import dataclass
from pathlib import Path

from cpython_wasm.errors import UserError
from cpython_wasm.files import sha256_path
from cpython_wasm.paths import CONTAINER_TOOLS, CONTAINERS_DIR, display_path
from cpython_wasm.recipes.plan import Plan
from cpython_wasm.stages.images import StageImage, helper_file
from cpython_wasm.stages.stage import FileInput, Phase, ProductInput, Stage

PROFILE_RUNTIME_DIR = "/profile-runtime"  # the profile-runtime stage's output, and where host-instrumented mounts it
PROFILE_RUNTIME = f"{PROFILE_RUNTIME_DIR}/lib/libclang_rt.profile-wasm32.a"
PROFILE_DIR = "/profile"  # the profile stage's output, and where the host stage mounts it
PROFILE_NAME = "python.profdata"
PROFILE = f"{PROFILE_DIR}/{PROFILE_NAME}"
RUNTIME_SCRIPT = CONTAINERS_DIR / "files" / "build-profile-runtime.sh"
TRAINING_SCRIPT = CONTAINERS_DIR / "files" / "train-profile.sh"
# The stages that make the profile, by the key the lockfile's products give them (Build skips the first two when
# the profile is substituted).
RUNTIME_KEY, INSTRUMENTED_KEY, PROFILE_KEY = "profile-runtime", "host-instrumented", "profile"
MADE_FOR_THE_PROFILE = (RUNTIME_KEY, INSTRUMENTED_KEY)


@dataclass(frozen=True)
class PublishedProfile:
    """A profile a profile-guided build published, as a rebuild is given it: the file, and the lockfile's record of
    it (`build.pgo`)."""

    path: Path
    sha256: str
    size: int

    def check(self) -> None:
        """Refuse a file that is not the profile the lockfile names (before it is used)."""
        if not self.path.is_file():
            found = "is not a regular file"
        elif self.path.stat().st_size != self.size:
            found = f"has {self.path.stat().st_size} bytes, not the {self.size} the lockfile's `build.pgo.size` says"
        elif (actual := sha256_path(self.path)) != self.sha256:
            found = f"has sha256 {actual}, not the {self.sha256} the lockfile's `build.pgo.sha256` says"
        else:
            return
        raise UserError(f"Profile {display_path(self.path)} {found}: it is not the profile this lockfile was built "
                        f"with. Pass the profile published with the artifact (--profile), or the one committed beside "
                        f"the lockfile (profiles/).")


def instrumenting_args() -> tuple[str, ...]:
    """What the instrumented host build adds to configure's arguments. In the _NODIST flags, which CPython keeps
    out of sysconfig (a devkit's extensions must not be instrumented), and the runtime with wasi-libc's emulated
    mman and getpid in LDFLAGS_NODIST rather than LIBS: in LIBS, configure's own link checks find an mmap, and
    obmalloc then includes <sys/mman.h>, which WASI has not."""
    return ("CFLAGS_NODIST=-fprofile-instr-generate",
            f"LDFLAGS_NODIST=-fprofile-instr-generate {PROFILE_RUNTIME} -lwasi-emulated-mman -lwasi-emulated-getpid")


def optimising_args() -> tuple[str, ...]:
    """What the host build adds to configure's arguments to be guided by the profile. The warnings left out are
    about code the training never ran (test modules) or ran as different code (none here: the same source and
    flags), one line per function: they would bury the build log, and change nothing built."""
    return (f"CFLAGS_NODIST=-fprofile-instr-use={PROFILE} -Wno-profile-instr-out-of-date "
            f"-Wno-profile-instr-unprofiled -Wno-backend-plugin",)


def profile_runtime_stage(plan: Plan, toolchain: StageImage, cached_path, inputs_dir: str) -> Stage:
    """compiler-rt's profile runtime for the plan's toolchain, into PROFILE_RUNTIME_DIR/lib."""
    runtime = plan.profile_runtime
    script = FileInput.of(f"{CONTAINER_TOOLS}/{RUNTIME_SCRIPT.name}", RUNTIME_SCRIPT)
    name, sha256, path = helper_file(runtime.patch)
    patch, tarball = f"{inputs_dir}/{name}", f"{inputs_dir}/{runtime.source.file}"
    return Stage(
        "profile-runtime", f"profile-runtime-{runtime.llvm}-{plan.toolchain_name}", toolchain.id,
        (Phase("profile-runtime", ("sh", script.container, tarball, runtime.directory, patch, PROFILE_RUNTIME_DIR,
                                   *runtime.sources), "/tmp"),),
        # Not the release's SOURCE_DATE_EPOCH: one runtime for every release built with the toolchain.
        (("SOURCE_DATE_EPOCH", str(plan.base.source_date_epoch)),),
        (script, FileInput(patch, sha256, path), FileInput(tarball, runtime.source.sha256, cached_path(runtime.source))),
        PROFILE_RUNTIME_DIR, produces=(PROFILE_RUNTIME.removeprefix(f"{PROFILE_RUNTIME_DIR}/"),),
    )


def training_stages(plan: Plan, toolchain: StageImage, host_stage, source: ProductInput, cached_path,
                    inputs_dir: str) -> dict[str, Stage]:
    """The stages that make the profile, by key: the runtime, the instrumented host build (`host_stage(kind,
    configure arguments, inputs)` makes a host stage: target.py's) and the training run."""
    runtime = profile_runtime_stage(plan, toolchain, cached_path, inputs_dir)
    instrumented = host_stage(INSTRUMENTED_KEY, instrumenting_args(), (ProductInput(PROFILE_RUNTIME_DIR, runtime),))
    return {RUNTIME_KEY: runtime, INSTRUMENTED_KEY: instrumented,
            PROFILE_KEY: profile_stage(plan, toolchain, source, instrumented)}


def profile_stage(plan: Plan, toolchain: StageImage, source: ProductInput, instrumented: Stage) -> Stage:
    """The training run on the instrumented python.wasm, and its merged profile, into PROFILE_DIR."""
    script = FileInput.of(f"{CONTAINER_TOOLS}/{TRAINING_SCRIPT.name}", TRAINING_SCRIPT)
    llvm_profdata = f"llvm-profdata-{plan.toolchain.llvm_major}"  # Debian's, installed with clang
    return Stage(
        "profile", f"profile-{plan.host_name}", toolchain.id,
        (Phase("profile", ("sh", script.container, instrumented.output, llvm_profdata, PROFILE_DIR), "/tmp"),),
        instrumented.environment,
        (source, ProductInput(instrumented.output, instrumented), script),
        PROFILE_DIR, produces=(PROFILE_NAME,),
    )


def profile_file(product_path: Path) -> Path:
    """The merged profile in the profile stage's product."""
    return product_path / PROFILE_NAME
