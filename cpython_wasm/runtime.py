"""Running WASI programs with wasmtime's Python package (a library, no CLI).

Used in two places, so it depends on nothing but the standard library and
`wasmtime`:

- inside the toolchain image, as CPython's `--host-runner`, with the same
  command line as `wasmtime run`:
      python3 runtime.py --dir HOST::GUEST --env NAME=VALUE module.wasm ARGS...
- on the host, by `invoke smoke`, through `run_wasi()`.
"""

import argparse
import sys
import threading

import wasmtime

# CPython's own runner gives the guest 8 MiB of wasm stack (the size of a
# Linux `ulimit -s`), enough for a pydebug build's deep recursion.
MAX_WASM_STACK = 8 << 20
# wasmtime refuses a max_wasm_stack larger than its async stack size, whose
# setter the Python package does not expose.
ASYNC_STACK = MAX_WASM_STACK + (1 << 20)
# The wasm stack lives on the native stack of the thread that runs it: run in
# a thread whose stack has room for it and for the host frames below.
THREAD_STACK = MAX_WASM_STACK + (16 << 20)


def engine() -> wasmtime.Engine:
    config = wasmtime.Config()
    wasmtime._ffi.wasmtime_config_async_stack_size_set(config.ptr(), ASYNC_STACK)
    config.max_wasm_stack = MAX_WASM_STACK
    config.cache = True  # compiled code is cached (~/.cache/wasmtime): later runs start fast
    return wasmtime.Engine(config)


def run_wasi(module_path: str, args: list[str], *, dirs=(), env=None, stdout=None, stderr=None) -> int:
    """Run a WASI command module; return its exit status.

    dirs: (host path, guest path) pairs to preopen; env: the guest's whole
    environment; stdout/stderr: files to write to (default: inherit ours).
    """
    wasi = wasmtime.WasiConfig()
    wasi.argv = [module_path, *args]
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
            store = wasmtime.Store(engine())
            store.set_wasi(wasi)
            linker = wasmtime.Linker(store.engine)
            linker.define_wasi()
            instance = linker.instantiate(store, wasmtime.Module.from_file(store.engine, module_path))
            instance.exports(store)["_start"](store)
            outcome["status"] = 0
        except wasmtime.ExitTrap as exit_:
            outcome["status"] = exit_.code
        except BaseException as error:  # handed to the calling thread
            outcome["error"] = error

    previous = threading.stack_size(THREAD_STACK)
    try:
        thread = threading.Thread(target=run, name="wasi")
        thread.start()
    finally:
        threading.stack_size(previous)
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["status"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Run a WASI module with wasmtime (a subset of `wasmtime run`).")
    parser.add_argument("--dir", action="append", default=[], metavar="HOST::GUEST",
                        help="preopen a host directory as a guest directory")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="set a guest environment variable")
    parser.add_argument("module")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    dirs = [tuple(spec.split("::", 1)) if "::" in spec else (spec, spec) for spec in options.dir]
    env = dict(item.split("=", 1) for item in options.env)
    try:
        return run_wasi(options.module, options.args, dirs=dirs, env=env)
    except wasmtime.Trap as trap:
        print(f"{options.module}: wasm trap: {trap}", file=sys.stderr)
        return 128 + 6  # as a native program killed by abort()


if __name__ == "__main__":
    sys.exit(main())
