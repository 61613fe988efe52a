// Runs the python.js of a 3.11-3.13 "browser" flavour Emscripten artifact (Tools/wasm: the standard library
// preloaded from python.data into memory) under Node the way a python command runs:
//
//   node run-python-js.cjs ARTIFACT_DIR MOUNT_DIR LIB_DIR EXTRA_DIR [python arguments...]
//
// The browser flavour sees no host file: MOUNT_DIR (where regrtest's workers read and write) is mounted at the
// same path (NODEFS), and the process's working directory kept; each entry of EXTRA_DIR (Lib/test and what
// python.data leaves out) is linked into LIB_DIR, the preloaded standard library's directory, after whose zip
// it comes on sys.path. Its stdout keeps a last line that has no newline (regrtest's worker result) until its
// streams are closed, which it never does itself.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");

const [artifact, mountDir, libDir, extraDir, ...args] = process.argv.slice(2);

globalThis.Module = {
  arguments: args,
  // python.data and python.wasm beside python.js, wherever the process runs (regrtest starts each worker in
  // a directory of its own).
  locateFile: (name) => path.join(path.resolve(artifact), name),
  preRun: [() => {
    const FS = globalThis.Module.FS;
    if (!FS) {
      process.stderr.write(`run-python-js.cjs: ${artifact}/python.js does not export FS (link it with ` +
                           `-sEXPORTED_RUNTIME_METHODS=FS), so no host directory can be mounted for it\n`);
      process.exit(2);
    }
    FS.mkdirTree(mountDir);
    FS.mount(FS.filesystems.NODEFS, { root: mountDir }, mountDir);
    FS.mkdirTree(libDir);
    for (const name of fs.readdirSync(extraDir)) {
      FS.symlink(path.join(extraDir, name), path.join(libDir, name));
    }
    if (process.cwd() === mountDir || process.cwd().startsWith(mountDir + "/")) {
      FS.chdir(process.cwd());
    }
  }],
};
// Its runtime never exits (no EXIT_RUNTIME, so Module.onExit is not called either): close the file system's
// streams as Node exits, which writes out the last line.
process.on("exit", () => globalThis.Module.FS?.quit());
// As `node python.js` runs it, but in the global scope, where its `var Module` is the object above (a
// require()d file's top-level var would be a new local one), with the CommonJS names it uses.
const script = path.join(path.resolve(artifact), "python.js");
Object.assign(globalThis, { require, __filename: script, __dirname: path.dirname(script) });
vm.runInThisContext(fs.readFileSync(script, "utf8"), { filename: script });
