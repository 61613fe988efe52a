"""invoke tasks: parse options, call cpython_wasm. No logic lives here.

    invoke build  --python 3.13.5 --sdk 25 --provider debian
    invoke build  --python 3.13.5 --sdk 25 --provider debian --extension markupsafe --extension simplejson
    invoke render --python 3.13.5 --sdk 25 --provider debian
    invoke smoke  --python 3.13.5 --sdk 25 --provider debian
    invoke test   --python 3.13.5 --sdk 25 --provider debian [--suite fast|full]
    invoke bench  --python 3.13.5 --sdk 25 --provider debian
    invoke build  --python 3.13.5 --target emscripten --sdk 3.1.69 --provider debian
    invoke smoke  --python 3.13.5 --target emscripten --sdk 3.1.69 --provider debian --browser
    invoke fetch  --python 3.13.5 --sdk 25 --provider debian --mirror DIR
    invoke matrix [--json]
    invoke verify  dist/python-3.13.5-wasi_sdk-25-debian.tar.gz [--lock LOCKFILE]
    invoke rebuild --lock lockfiles/python-3.13.5-wasi_sdk-25-debian.json --check
    invoke gc [--dry-run] [--keep LOCKFILE]
    invoke shell --python 3.13.5 --sdk 25 --provider debian [--command CMD]
"""

from functools import partial

import invoke

from cpython_wasm import cli, usage

# A bad command line exits 2 with one paragraph, like any other usage error (invoke alone: 1, one terse line).
usage.report_usage_errors()

# Long options only: invoke's automatic short flags take the first free letter of each name, so -h would be
# `matrix --cache-dir` instead of help and the letters would change whenever an option is added.
task = partial(invoke.task, auto_shortflags=False)

SELECTION_HELP = {
    "python": "X.Y, a CPython line, builds its newest pinned release (default: 3.13); X.Y.Z, e.g. 3.13.5, that "
              "release (`invoke matrix` lists the pinned ones)",
    "target": "wasi (default) or emscripten",
    "sdk": "the toolchain's release: a WASI SDK major version (e.g. 25) or an emsdk version (e.g. 3.1.69); "
           "default: the one PEP 11 assigns to this CPython",
    "provider": "where the toolchain comes from: release (default), its official tarball, or debian, Debian's "
                "package",
}
# Invoke shows no value placeholder for a repeatable option: the help names it first.
MIRROR_HELP = {"mirror": "DIR, repeatable: a local directory of pinned files, tried before any URL"}
RECIPES_HELP = {"recipes": "a directory of recipes to use instead of this checkout's recipes/"}
BASE_IMAGE_HELP = {
    "base_image": "a registry image pinned by digest (NAME@sha256:...) instead of bootstrapping the base",
}


BUILD_HELP = {
    **BASE_IMAGE_HELP,
    **RECIPES_HELP,
    **MIRROR_HELP,
    "debian_mirror": "Debian archive URL for the base image (e.g. a snapshot.debian.org URL)",
    "configure_arg": "ARG, repeatable: an extra argument for the host `configure`, e.g. "
                     "--configure-arg=--with-pydebug (recorded in the lockfile)",
    "cache_dir": "download cache (default: the per-user cache directory)",
    "build_dir": "store of intermediate products and logs (default: build/)",
    "dist_dir": "where the artifact goes (default: dist/)",
    "lock_dir": "where the lockfile goes (default: lockfiles/)",
}


FLAVOUR_HELP = {"flavour": "a variant of the interpreter, of recipes/flavours/ (WASI): snapshot, pre-initialised by "
                            "wasmtime wizer, or minimal, the smallest useful one; its own artifact, named "
                            "...-snapshot or ...-minimal (default: the stock interpreter)"}


@task(iterable=["mirror", "configure_arg", "extension"], help={
    **SELECTION_HELP, **BUILD_HELP,
    "extension": "NAME, repeatable: a C extension of recipes/extensions/ to link into python.wasm as a built-in "
                 "module (WASI; a custom interpreter, named for its extensions)",
    **FLAVOUR_HELP,
    "dry_run": "print the images and stages with their identities (store paths), and build nothing",
    "pgo": "profile-guided optimisation of python.wasm where the recipes give it (default); --no-pgo: without, "
           "saving its training (about 5 minutes)",
})
def build(c, python="3.13", sdk=None, provider=None, target="wasi", mirror=None, debian_mirror=None,
          base_image=None, configure_arg=None, extension=None, flavour=None, recipes=None, cache_dir=None,
          build_dir=None, dist_dir=None, lock_dir=None, dry_run=False, pgo=True):
    """Build CPython for WebAssembly in containers: dist/ tarball + lockfile, then a smoke run."""
    cli.run(cli.build, dry_run=dry_run, python=python, sdk=sdk, provider=provider, target=target, mirror=mirror or (),
            debian_mirror=debian_mirror, base_image=base_image, configure_arg=configure_arg or (),
            extension=extension or (), flavour=flavour, recipes=recipes, cache_dir=cache_dir, build_dir=build_dir,
            dist_dir=dist_dir, lock_dir=lock_dir, pgo=pgo)


@task(iterable=["mirror", "configure_arg"], help={
    **SELECTION_HELP, **BUILD_HELP, **FLAVOUR_HELP,
    "suite": "which tests (recipes/tests.toml): fast (default; what CI runs on every change) or full (every test)",
    "jobs": "test workers running at once (default: one per core)",
    "rerun": "run the suite again even if this artifact's results for it are in the store",
})
def test(c, python="3.13", sdk=None, provider=None, target="wasi", suite="fast", jobs=None, rerun=False, mirror=None,
         debian_mirror=None, base_image=None, configure_arg=None, flavour=None, recipes=None, cache_dir=None,
         build_dir=None, dist_dir=None, lock_dir=None):
    """Run CPython's test suite on the built artifact under its runtime (building it first if needed)."""
    cli.run(cli.test, suite=suite, jobs=jobs, rerun=rerun, python=python, sdk=sdk, provider=provider, target=target,
            mirror=mirror or (), debian_mirror=debian_mirror, base_image=base_image, configure_arg=configure_arg or (),
            flavour=flavour, recipes=recipes, cache_dir=cache_dir, build_dir=build_dir, dist_dir=dist_dir, lock_dir=lock_dir)


@task(iterable=["mirror", "configure_arg", "runtime"], help={
    **SELECTION_HELP, **BUILD_HELP, **FLAVOUR_HELP,
    "rounds": "rounds of the speed workloads, native and wasm interleaved (default: 7)",
    "values": "timed runs of each workload per process (default: 5)",
    "startup_runs": "runs of each startup measurement (default: 20)",
    "output": "where the JSON, the chart and the pyperf files go (default: bench/results/)",
    "check": "exit 1 if a target is missed",
    "runtime": "also run under this runtime, by name (repeatable; `all`: every one the target has; README's runtime "
               "table lists them); the target's default runtime always runs",
})
def bench(c, python="3.13", sdk=None, provider=None, target="wasi", rounds=None, values=None, startup_runs=None, output=None,
          check=False, runtime=None, mirror=None, debian_mirror=None, base_image=None, configure_arg=None, flavour=None,
          recipes=None, cache_dir=None, build_dir=None, dist_dir=None, lock_dir=None):
    """Benchmark the built artifact against native CPython: speed, startup, size, build time (JSON and a chart)."""
    cli.run(cli.bench, rounds=rounds, values=values, startup_runs=startup_runs, output=output, check=check,
            runtime=runtime or (),
            python=python, sdk=sdk, provider=provider, target=target, mirror=mirror or (), debian_mirror=debian_mirror,
            base_image=base_image, configure_arg=configure_arg or (), flavour=flavour, recipes=recipes,
            cache_dir=cache_dir, build_dir=build_dir, dist_dir=dist_dir, lock_dir=lock_dir)


@task(help={**SELECTION_HELP, **BASE_IMAGE_HELP, **RECIPES_HELP, "image": "toolchain (default) or native"})
def render(c, python="3.13", sdk=None, provider=None, target="wasi", image="toolchain", base_image=None,
           recipes=None):
    """Print the rendered Dockerfile of a build's image."""
    cli.run(cli.render, python=python, sdk=sdk, provider=provider, target=target, image=image,
            base_image=base_image, recipes=recipes)


@task(help={**SELECTION_HELP, "artifact": "path of an artifact tarball (instead of the selection)",
            "dist_dir": "where to look for the artifact (default: dist/)",
            "lock_dir": "where to look for its lockfile (default: lockfiles/)",
            "browser": "Emscripten: also run it in headless Chromium (Debian's), from a page served on loopback"})
def smoke(c, python="3.13", sdk=None, provider=None, target="wasi", artifact=None, dist_dir=None, lock_dir=None,
          browser=False):
    """Run a built interpreter on its runtime (wasmtime or Node): import sys, json, zlib; check platform, version."""
    cli.run(cli.smoke_run, python=python, sdk=sdk, provider=provider, target=target, artifact=artifact,
            dist_dir=dist_dir, lock_dir=lock_dir, browser=browser)


@task(iterable=["mirror"], help={**SELECTION_HELP, **RECIPES_HELP,
                                 "mirror": "DIR: the directory to fill (DIR/sha256/<hash>); created if missing",
                                 "cache_dir": "download cache (default: the per-user cache directory)"})
def fetch(c, python="3.13", sdk=None, provider=None, target="wasi", mirror=None, recipes=None, cache_dir=None):
    """Download every input of a build into a mirror directory, for builds without network (--mirror DIR)."""
    cli.run(cli.fetch, python=python, sdk=sdk, provider=provider, target=target, mirror=mirror or (),
            recipes=recipes, cache_dir=cache_dir)


@task(iterable=["mirror"], help={**RECIPES_HELP, "json": "print JSON (a build matrix for CI) instead of a table",
                                 "check": "check whether each pairing's inputs can be had here (default: yes)",
                                 "arch": "host architecture (default: this machine's)",
                                 "mirror": "DIR, repeatable: a local directory of pinned files to count as available",
                                 "cache_dir": "download cache (default: the per-user cache directory)",
                                 "only": "all (default), latest (each line's newest release) or official (PEP 11)"})
def matrix(c, json=False, check=True, arch=None, mirror=None, recipes=None, cache_dir=None, only="all"):
    """List every supported CPython × WASI SDK × provider pairing, and which can be built here."""
    cli.run(cli.matrix, as_json=json, check=check, arch=arch, mirror=mirror or (), recipes=recipes,
            cache_dir=cache_dir, only=only)


@task(help={**SELECTION_HELP,
            "command": "a command line to run (with sh -c) instead of an interactive shell",
            "network": "give the container network (default: none)",
            "workdir": "the directory mounted at /work (default: the current directory)",
            "build_dir": "where the devkit is unpacked (default: build/)",
            "dist_dir": "where the artifact and its devkit are (default: dist/)",
            "lock_dir": "where its lockfile is (default: lockfiles/)"})
def shell(c, python="3.13", sdk=None, provider=None, target="wasi", command=None, network=False, workdir=None,
          build_dir=None, dist_dir=None, lock_dir=None):
    """Open the toolchain image that built an artifact, its devkit at $DEVKIT, to compile C code against it."""
    cli.run(cli.shell, python=python, sdk=sdk, provider=provider, target=target, line=command, network=network,
            workdir=workdir, build_dir=build_dir, dist_dir=dist_dir, lock_dir=lock_dir)


@task(help={"artifact": "an Emscripten artifact's .tar.gz, or the directory it unpacks to",
            "port": "the port on 127.0.0.1 (default: 8000; 0 for a free one)",
            "page": "the REPL page to open, also served at / (python.html for 3.11-3.13; index.html, the default, "
                    "or pyrepl.html for 3.14+)"})
def serve(c, artifact, port=8000, page=None):
    """Serve an Emscripten artifact with the headers its REPL pages need; print the page's URL."""
    cli.run(cli.serve, artifact=artifact, port=port, page=page)


@task(help={"artifact": "the artifact tarball to verify",
            "lock": "its lockfile (default: lockfiles/<artifact>.json when it exists)",
            "sha256": "the artifact's expected sha256, when there is no lockfile",
            "lock_dir": "where to look for the default lockfile (default: lockfiles/)"})
def verify(c, artifact, lock=None, sha256=None, lock_dir=None):
    """Prove an artifact is what its lockfile says, file by file. Exit 0 verified, 1 differs, 2 usage, 3 unsafe archive."""
    cli.run(cli.verify, artifact=artifact, lock=lock, sha256=sha256, lock_dir=lock_dir)


# No short flags: the two --allow-... options would get "-w" and "-_" (invoke takes the first free letter).
@task(iterable=["mirror"], auto_shortflags=False, help={
    **RECIPES_HELP,
    "lock": "the lockfile to rebuild",
    "check": "exit 1 if anything differs from the lockfile (default: report only)",
    "output": "the (new or empty) directory to rebuild in (default: build/rebuilds/<artifact>-<time>)",
    "artifact": "the original artifact, for a per-file comparison (default: dist/<artifact>.tar.gz)",
    **MIRROR_HELP,
    "cache_dir": "download cache (default: the per-user cache directory)",
    "allow_extra_configure_args": "use the lockfile's configure arguments beyond the recipe's (printed first; "
                                  "each must be an option, --name or --name=value)",
    "allow_other_base": "use the lockfile's Debian mirror or registry base image where it is not the recipe's "
                        "(printed first)",
    "profile": "a profile-guided build's profile, as published with it (default: profiles/<file> beside the "
               "lockfile, else dist/<file> beside lockfiles/)",
})
def rebuild(c, lock, check=False, output=None, artifact=None, mirror=None, recipes=None, cache_dir=None,
            allow_extra_configure_args=False, allow_other_base=False, profile=None):
    """Build a lockfile again from scratch (fresh store, images, containers) and compare every hash with it."""
    cli.run(cli.rebuild, lock=lock, check=check, output=output, artifact=artifact, mirror=mirror or (),
            recipes=recipes, cache_dir=cache_dir, allow_extra_configure_args=allow_extra_configure_args,
            allow_other_base=allow_other_base, profile=profile)


@task(help={**SELECTION_HELP,
            "dist_dir": "where to write the archives (default: dist/)",
            "lock_dir": "where the selection's lockfile is (default: lockfiles/)"})
def image_export(c, python="3.13", sdk=None, provider=None, target="wasi", dist_dir=None, lock_dir=None):
    """Write the native and toolchain images a build recorded to dist/ as docker-load archives, checked against
    its lockfile."""
    cli.run(cli.image_export, python=python, sdk=sdk, provider=provider, target=target, dist_dir=dist_dir,
            lock_dir=lock_dir)


@task(help={"archive": "an image archive written by `invoke image-export`",
            "lock_dir": "the lockfiles it is checked against (default: lockfiles/)"})
def image_import(c, archive, lock_dir=None):
    """Load an image archive into the engine, once its image ID and layer match a lockfile's. Exit 3 if refused."""
    cli.run(cli.image_import, archive=archive, lock_dir=lock_dir)


@task(iterable=["keep"], help={
    "keep": "LOCKFILE, repeatable: keep what this lockfile reaches too (beside those in the lock directory)",
    "dry_run": "list what would be removed, and remove nothing",
    "build_dir": "the store to collect (default: build/)",
    "lock_dir": "the lockfiles whose products and images are kept (default: lockfiles/)",
})
def gc(c, keep=None, dry_run=False, build_dir=None, lock_dir=None):
    """Remove store products and images that no lockfile reaches (never what a running build holds)."""
    cli.run(cli.gc, keep=keep or (), dry_run=dry_run, build_dir=build_dir, lock_dir=lock_dir)
