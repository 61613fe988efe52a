/* python.wasm's main for a pre-initialised snapshot (`invoke build --flavour snapshot`, recipes/flavours/).
 *
 * Linked instead of CPython's Programs/python.o by cpython_wasm/container/snapshot.py: a build option, never a
 * change to CPython's sources.
 *
 * snapshot_initialize (exported as "wizer-initialize"): what `wasmtime wizer` runs once, at build time: the
 * interpreter initialised with the artifact's standard library at /, and the modules SNAPSHOT_IMPORTS
 * imported, the run function compiled, and every object made so far frozen out of the garbage collector's
 * scans (gc.freeze()). wizer then writes the instance's memory out as a new module: every run starts from there. So
 * that a snapshot made twice is the same bytes, the hash secret is fixed (PYTHONHASHSEED=0's: no hash
 * randomisation), the file system and the clock look the same every time (below), and the dead stack is
 * cleared. At run time, what a module recorded of the clock at import is reset (logging's start time).
 *
 * main: at run time. In a module that was never snapshotted it is CPython's own main. In a snapshot it
 * first makes wasi-libc read what belongs to this run (the environment, the preopened directories), hands
 * the real argv and environment to the initialised interpreter, then runs what argv asks for (-c CODE,
 * -m MODULE, a script, each with its arguments) as CPython's main would; options were fixed at snapshot
 * time and are refused.
 */
#include <Python.h>
#include <stdlib.h>
#include <string.h>
#include <wasi/api.h>
#include <wasi/libc-environ.h>

void __wasilibc_reset_preopens(void);

#ifndef SNAPSHOT_IMPORTS
#define SNAPSHOT_IMPORTS "sys"
#endif

#ifndef SNAPSHOT_EPOCH
#define SNAPSHOT_EPOCH 0
#endif

static int snapshotted;   /* set in the snapshot: its main picks up the initialised interpreter */
static int snapshotting;  /* while wizer runs snapshot_initialize */

/* What the host's file system and clock would leave in the snapshot, and differs between two runs of wizer on
 * the same files: inode numbers, access and change times, the time of day. Dead stack frames and freed memory
 * keep them (a freed os.stat result, a directory read), so while the snapshot is made, wasi-libc's calls that
 * return them (linked with --wrap, see container/snapshot.py) give steady values instead: no inode numbers or
 * devices, every time the file's mtime (the artifact's, SOURCE_DATE_EPOCH), the clock at SNAPSHOT_EPOCH. */
__wasi_errno_t __real___wasi_path_filestat_get(__wasi_fd_t, __wasi_lookupflags_t, const char *, __wasi_filestat_t *);
__wasi_errno_t __real___wasi_fd_filestat_get(__wasi_fd_t, __wasi_filestat_t *);
__wasi_errno_t __real___wasi_fd_readdir(__wasi_fd_t, uint8_t *, __wasi_size_t, __wasi_dircookie_t, __wasi_size_t *);
__wasi_errno_t __real___wasi_clock_time_get(__wasi_clockid_t, __wasi_timestamp_t, __wasi_timestamp_t *);

static void steady(__wasi_filestat_t *stat) {
    stat->dev = 0;
    stat->ino = 1; /* not 0: wasi-libc's readdir asks fstatat again for an inode number of 0 */
    stat->atim = stat->ctim = stat->mtim;
}

__wasi_errno_t __wrap___wasi_path_filestat_get(__wasi_fd_t fd, __wasi_lookupflags_t flags, const char *path,
                                               __wasi_filestat_t *stat) {
    __wasi_errno_t error = __real___wasi_path_filestat_get(fd, flags, path, stat);
    if (snapshotting && error == 0) steady(stat);
    return error;
}

__wasi_errno_t __wrap___wasi_fd_filestat_get(__wasi_fd_t fd, __wasi_filestat_t *stat) {
    __wasi_errno_t error = __real___wasi_fd_filestat_get(fd, stat);
    if (snapshotting && error == 0) steady(stat);
    return error;
}

__wasi_errno_t __wrap___wasi_fd_readdir(__wasi_fd_t fd, uint8_t *buffer, __wasi_size_t length,
                                        __wasi_dircookie_t cookie, __wasi_size_t *used) {
    __wasi_errno_t error = __real___wasi_fd_readdir(fd, buffer, length, cookie, used);
    if (snapshotting && error == 0) {
        /* Each entry: a __wasi_dirent_t, then its name; the last one may be cut short. */
        for (size_t offset = 0; offset + sizeof(__wasi_dirent_t) <= *used;) {
            __wasi_dirent_t entry;
            memcpy(&entry, buffer + offset, sizeof entry);
            entry.d_ino = 1;
            memcpy(buffer + offset, &entry, sizeof entry);
            offset += sizeof entry + entry.d_namlen;
        }
    }
    return error;
}

__wasi_errno_t __wrap___wasi_clock_time_get(__wasi_clockid_t clock, __wasi_timestamp_t precision,
                                            __wasi_timestamp_t *time) {
    if (snapshotting) {
        *time = (__wasi_timestamp_t)SNAPSHOT_EPOCH * 1000000000ull;
        return 0;
    }
    return __real___wasi_clock_time_get(clock, precision, time);
}

/* The shadow stack below this function's frame: what dead frames left there is written out with the rest of
 * memory. --stack-first puts the stack at the bottom of memory, from __stack_low up. */
extern unsigned char __stack_low[];

__attribute__((noinline)) static void clear_dead_stack(void) {
    volatile unsigned char here = 0;
    unsigned char *below = (unsigned char *)&here - 4096;
    for (unsigned char *byte = __stack_low; byte < below; byte++) {
        *(volatile unsigned char *)byte = 0;
    }
}

/* Run at the start of a snapshot's run, with the interpreter initialised: argv, environment, the run. Defined
 * (compiled) when the snapshot is made, in a namespace of its own, so a run neither compiles it nor finds it in
 * __main__. */
static const char RUN[] =
    "def _snapshot_run(argv, environ):\n"
    "    import os, sys\n"
    "    os.environ._data.clear()\n"
    "    os.environ._data.update(environ)\n"
    "    if 'logging' in sys.modules:\n"
    "        import time\n"
    "        logging = sys.modules['logging']\n"
    "        logging._startTime = time.time_ns() if isinstance(logging._startTime, int) else time.time()\n"
    "    sys.orig_argv = list(argv)\n"
    "    args = argv[1:]\n"
    "    import __main__, runpy\n"
    "    if len(args) >= 2 and args[0] == '-c':\n"
    "        sys.argv = ['-c', *args[2:]]\n"
    "        sys.path.insert(0, '')\n"
    "        exec(compile(args[1], '<string>', 'exec'), __main__.__dict__)\n"
    "    elif len(args) >= 2 and args[0] == '-m':\n"
    "        sys.argv = [args[1], *args[2:]]\n"
    "        sys.path.insert(0, os.getcwd())\n"
    "        runpy._run_module_as_main(args[1])\n"
    "    elif args and not args[0].startswith('-'):\n"
    "        sys.argv = list(args)\n"
    "        sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))\n"
    "        runpy.run_path(args[0], run_name='__main__')\n"
    "    else:\n"
    "        print('python.wasm (snapshot): runs -c CODE, -m MODULE or a SCRIPT, with their arguments; '\n"
    "              'options were fixed when the snapshot was made', file=sys.stderr)\n"
    "        raise SystemExit(2)\n";

static PyObject *run_function;  /* _snapshot_run, defined in the snapshot */

/* `code` run in a namespace of its own, with the builtins: that namespace, or NULL with the error set. */
static PyObject *run_apart(const char *code) {
    PyObject *namespace = PyDict_New();
    PyObject *result = namespace && PyDict_SetItemString(namespace, "__builtins__", PyEval_GetBuiltins()) == 0
        ? PyRun_String(code, Py_file_input, namespace, namespace) : NULL;
    if (result == NULL) {
        Py_XDECREF(namespace);
        return NULL;
    }
    Py_DECREF(result);
    return namespace;
}

__attribute__((export_name("wizer-initialize"))) void snapshot_initialize(void) {
    snapshotting = 1;
    PyConfig config;
    PyConfig_InitPythonConfig(&config);
    config.parse_argv = 0;
    config.use_hash_seed = 1; /* PYTHONHASHSEED=0: a snapshot made twice must be the same bytes */
    config.hash_seed = 0;
    PyConfig_SetString(&config, &config.home, L"/");
    PyStatus status = Py_InitializeFromConfig(&config);
    PyConfig_Clear(&config);
    if (PyStatus_Exception(status)) {
        Py_ExitStatusException(status);
    }
    /* Imported in a namespace of their own: a run's __main__ holds only what its program binds. */
    PyObject *imported = run_apart("import " SNAPSHOT_IMPORTS "\n");
    Py_XDECREF(imported);
    /* The run function, compiled now; then every object made so far goes to the garbage collector's permanent
     * generation (gc.freeze()): no collection scans them again, at run time or when the interpreter is
     * finalised at exit, which otherwise traversed the whole initialised heap (measured: most of the time a
     * `-c pass` run spent after its program). */
    PyObject *defined = imported ? run_apart(RUN) : NULL;
    run_function = defined ? Py_XNewRef(PyDict_GetItemString(defined, "_snapshot_run")) : NULL;
    Py_XDECREF(defined);
    PyObject *gc = run_function ? PyImport_ImportModule("gc") : NULL;
    PyObject *collected = gc ? PyObject_CallMethod(gc, "collect", NULL) : NULL;
    PyObject *frozen = collected ? PyObject_CallMethod(gc, "freeze", NULL) : NULL;
    if (frozen == NULL) {
        PyErr_Print();
        abort();
    }
    Py_DECREF(frozen);
    Py_DECREF(collected);
    Py_DECREF(gc);
    snapshotted = 1;
    snapshotting = 0;
    clear_dead_stack();
}

int main(int argc, char **argv) {
    if (!snapshotted) {
        return Py_BytesMain(argc, argv);
    }
    __wasilibc_deinitialize_environ();
    __wasilibc_initialize_environ();
    __wasilibc_reset_preopens();
    PyObject *args = PyList_New(0), *environ_ = PyDict_New();
    for (int i = 0; i < argc; i++) {
        PyObject *arg = PyUnicode_DecodeFSDefault(argv[i]);
        PyList_Append(args, arg);
        Py_XDECREF(arg);
    }
    for (char **entry = environ; entry && *entry; entry++) {
        const char *equals = strchr(*entry, '=');
        if (equals == NULL) continue;
        PyObject *key = PyBytes_FromStringAndSize(*entry, equals - *entry), *value = PyBytes_FromString(equals + 1);
        PyDict_SetItem(environ_, key, value);
        Py_XDECREF(key);
        Py_XDECREF(value);
    }
    PyObject *result = PyObject_CallFunctionObjArgs(run_function, args, environ_, NULL);
    Py_DECREF(args);
    Py_DECREF(environ_);
    int status = 0;
    if (result == NULL) {
        /* SystemExit: its code, as CPython's main; any other exception: its traceback, status 1. */
        PyErr_Print();
        status = 1;
    }
    Py_XDECREF(result);
    if (Py_FinalizeEx() < 0) {
        status = 120;
    }
    return status;
}
