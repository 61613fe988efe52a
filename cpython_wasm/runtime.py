#!/usr/bin/env python3
"""Running WASI programs with wasmtime's Python package (a library, no CLI).

Used where Python code embeds the engine, so it depends on nothing but the
standard library and `wasmtime`: by the tests, through `run_wasi()`, and by
`invoke bench`'s in-process startup rows, mounted beside the bench runner in
the toolchain image (which has wasmtime's wheel), where it also times the
whole process of its own command line, the subset of `wasmtime run` that
CPython's build helpers use in their default host runners (3.11 to 3.15):
      runtime.py run [--dir HOST::GUEST] [--mapdir GUEST::HOST] [--env NAME=VALUE]
                     [--wasm max-wasm-stack=N] [--wasi OPTION] [--argv0 NAME]
                     [--config FILE.toml] [--allow-precompiled] [--] MODULE [ARGS...]
      runtime.py compile MODULE.wasm [-o MODULE.cwasm]
Everything else that runs python.wasm in the toolchain image runs the
wasmtime CLI installed there (inputs/tools.py).

A precompiled module (`.cwasm`, from `wasmtime compile` or `compile_module`)
is native code for this machine and this wasmtime release: loading it skips
Cranelift entirely, which is what makes startup fast. As with the wasmtime
CLI, it is only run when the caller allows it (it is trusted like a binary).
"""

import argparse
import sys
import threading
import tomllib

import wasmtime

# CPython 3.13's runner gives the guest 8 MiB of wasm stack (the size of a
# Linux `ulimit -s`); 3.14 asks for 16 MiB and 3.15 for 32 MiB.
DEFAULT_WASM_STACK = 8 << 20


def engine(max_wasm_stack: int = DEFAULT_WASM_STACK, cache: bool = True) -> wasmtime.Engine:
    """An engine as `wasmtime run` configures it; `cache`: keep compiled code in ~/.cache/wasmtime."""
    config = wasmtime.Config()
    # wasmtime refuses a max_wasm_stack larger than its async stack size, whose
    # setter the Python package does not expose.
    wasmtime._ffi.wasmtime_config_async_stack_size_set(config.ptr(), max_wasm_stack + (1 << 20))
    config.max_wasm_stack = max_wasm_stack
    if cache:  # later runs of the same module skip compiling it (off is wasmtime's default)
        config.cache = True
    return wasmtime.Engine(config)


PRECOMPILED_SUFFIX = ".cwasm"


class PrecompiledRefused(Exception):
    pass


def load_module(engine_: wasmtime.Engine, module_path: str, allow_precompiled: bool = False) -> wasmtime.Module:
    """A module from a .wasm (compiled now, or found in the cache) or a .cwasm (mapped, nothing compiled)."""
    if str(module_path).endswith(PRECOMPILED_SUFFIX):
        if not allow_precompiled:
            raise PrecompiledRefused(f"{module_path} is a precompiled module (native code): run it with "
                                     f"--allow-precompiled if you trust where it came from")
        return wasmtime.Module.deserialize_file(engine_, str(module_path))
    return wasmtime.Module.from_file(engine_, str(module_path))


def compile_module(module_path: str, output: str, max_wasm_stack: int = DEFAULT_WASM_STACK) -> str:
    """`wasmtime compile`: write the module's native code for this machine to `output` (a .cwasm)."""
    compiled = wasmtime.Module.from_file(engine(max_wasm_stack, cache=False), str(module_path)).serialize()
    with open(output, "wb") as file:
        file.write(compiled)
    return output


def run_wasi(module_path: str, args: list[str], *, dirs=(), env=None, stdout=None, stderr=None,
             argv0: str | None = None, max_wasm_stack: int = DEFAULT_WASM_STACK, cache: bool = True,
             allow_precompiled: bool = False) -> int:
    """Run a WASI command module (.wasm, or .cwasm if allowed); return its exit status.

    dirs: (host path, guest path) pairs to preopen; env: the guest's whole
    environment; stdout/stderr: files to write to (default: inherit ours);
    argv0: the guest's argv[0] (default: the module path); cache: use
    wasmtime's cache of compiled code.
    """
    wasi = wasmtime.WasiConfig()
    wasi.argv = [argv0 or module_path, *args]
    wasi.env = sorted((env or {}).items())
    for host, guest in dirs:
        wasi.preopen_dir(str(host), guest)
    wasi.inherit_stdin()
    if stdout is None:
        wasi.inherit_stdout()
    else:
        wasi.stdout_file = str(stdout)
    if stderr is None:
        wasi.inherit_stderr()
    else:
        wasi.stderr_file = str(stderr)

    outcome = {}

    def run() -> None:
        try:
            store = wasmtime.Store(engine(max_wasm_stack, cache))
            store.set_wasi(wasi)
            linker = wasmtime.Linker(store.engine)
            linker.define_wasi()
            instance = linker.instantiate(store, load_module(store.engine, module_path, allow_precompiled))
            instance.exports(store)["_start"](store)
            outcome["status"] = 0
        except wasmtime.ExitTrap as exit_:
            outcome["status"] = exit_.code
        except BaseException as error:  # handed to the calling thread
            outcome["error"] = error

    # The wasm stack lives on the native stack of the thread that runs it: run in
    # a thread whose stack has room for it and for the host frames below.
    previous = threading.stack_size(max_wasm_stack + (16 << 20))
    try:
        thread = threading.Thread(target=run, name="wasi")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]


def _pair(spec: str) -> tuple[str, str]:
    first, separator, second = spec.partition("::")
    return (first, second) if separator else (spec, spec)


def compile_main(argv) -> int:
    parser = argparse.ArgumentParser(prog="wasmtime compile", description="Precompile a module for this machine.")
    parser.add_argument("module")
    parser.add_argument("-o", "--output", help="the .cwasm to write (default: MODULE with .cwasm for .wasm)")
    options = parser.parse_args(argv)
    output = options.output or str(options.module).removesuffix(".wasm") + PRECOMPILED_SUFFIX
    compile_module(options.module, output)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "compile":
        return compile_main(argv[1:])
    if argv and argv[0] == "run":  # `wasmtime run ...` and `wasmtime ...` are the same
        argv = argv[1:]
    parser = argparse.ArgumentParser(prog="wasmtime run",
                                     description="Run a WASI module with wasmtime (a subset of `wasmtime run`).")
    parser.add_argument("--dir", action="append", default=[], metavar="HOST::GUEST",
                        help="preopen a host directory as a guest directory")
    parser.add_argument("--mapdir", action="append", default=[], metavar="GUEST::HOST",
                        help="the older spelling of --dir, guest first")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set a guest environment variable")
    parser.add_argument("--wasm", action="append", default=[], metavar="OPTION",
                        help="wasm option; only max-wasm-stack=N is used, others are accepted and ignored")
    parser.add_argument("--wasi", action="append", default=[], metavar="OPTION", help="accepted and ignored")
    parser.add_argument("--argv0", help="the guest's argv[0]")
    parser.add_argument("--config", help="a wasmtime TOML configuration; [wasm] max-wasm-stack is used")
    parser.add_argument("--allow-precompiled", action="store_true", help="allow running a precompiled .cwasm")
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)

    max_wasm_stack = DEFAULT_WASM_STACK
    if options.config:
        with open(options.config, "rb") as file:
            max_wasm_stack = int(tomllib.load(file).get("wasm", {}).get("max-wasm-stack", max_wasm_stack))
    for option in options.wasm:
        name, _, value = option.partition("=")
        if name == "max-wasm-stack":
            max_wasm_stack = int(value)
    dirs = [_pair(spec) for spec in options.dir] + [tuple(reversed(_pair(spec))) for spec in options.mapdir]
    env = dict(item.split("=", 1) for item in options.env)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    try:
        return run_wasi(options.module, args, dirs=dirs, env=env, argv0=options.argv0, max_wasm_stack=max_wasm_stack,
                        allow_precompiled=options.allow_precompiled)
    except PrecompiledRefused as refused:
        print(f"wasmtime run: {refused}", file=sys.stderr)
        return 2
    except wasmtime.Trap as trap:
        print(f"{options.module}: wasm trap: {trap}", file=sys.stderr)
        return 128 + 6  # as a native program killed by abort()


if __name__ == "__main__":
    sys.exit(main())
