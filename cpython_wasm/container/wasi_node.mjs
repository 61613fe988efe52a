// Runs a WASI preview1 command module under Node.js's WASI (node:wasi), taking the wasmtime CLI's own options
// for what the guest sees, so that `invoke bench --runtime node` runs python.wasm exactly as the wasmtime runtimes
// do (targets/wasi.py, wasmtime_guest_options):
//
//     node wasi_node.mjs [--dir HOST::GUEST]... [--env NAME=VALUE]... [--argv0 NAME] MODULE [ARGUMENT]...
//
// The exit status is the guest's. Anything else on the command line is refused (status 2): the options come from
// our own configuration, so an unknown one is a mistake to show, not to skip.
import { readFile } from "node:fs/promises";
import process from "node:process";
import { WASI } from "node:wasi";

function usage(message) {
  process.stderr.write(`wasi_node.mjs: ${message}\n`);
  process.exit(2);
}

function parse(argv) {
  const preopens = {};
  const env = {};
  let argv0 = null;
  let index = 0;
  while (index < argv.length && argv[index].startsWith("--")) {
    const [option, value] = [argv[index], argv[index + 1]];
    if (value === undefined) usage(`${option} needs a value`);
    if (option === "--dir") {
      const [host, guest, ...rest] = value.split("::");
      if (!host || !guest || rest.length) usage(`--dir ${value}: expected HOST::GUEST`);
      preopens[guest] = host;
    } else if (option === "--env") {
      const equals = value.indexOf("=");
      if (equals < 1) usage(`--env ${value}: expected NAME=VALUE`);
      env[value.slice(0, equals)] = value.slice(equals + 1);
    } else if (option === "--argv0") {
      argv0 = value;
    } else {
      usage(`unknown option ${option} (known: --dir, --env, --argv0)`);
    }
    index += 2;
  }
  const [module, ...args] = argv.slice(index);
  if (!module) usage("no module given");
  return { module, args: [argv0 ?? module, ...args], env, preopens };
}

const { module, args, env, preopens } = parse(process.argv.slice(2));
const wasi = new WASI({ version: "preview1", args, env, preopens, returnOnExit: true });
const compiled = await WebAssembly.compile(await readFile(module));
const instance = await WebAssembly.instantiate(compiled, wasi.getImportObject());
process.exitCode = wasi.start(instance);
