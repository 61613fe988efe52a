#!/bin/sh
# Train a profile for profile-guided optimisation: CPython's own training task
# (the Makefile's PROFILE_TASK, what `--enable-optimizations` runs natively) on
# the instrumented python.wasm, then the raw profile merged by the toolchain's
# llvm-profdata into OUTPUT/python.profdata.
#
# The profile stage (cpython_wasm/targets/pgo.py) runs it in the WASI toolchain
# image, without network, as an unprivileged user; the source and the
# instrumented host build are mounted read-only where the build left them, so
# python.wasm runs as the build's own runner does (the Makefile's HOSTRUNNER:
# the source tree as the guest's /), with two writable directories added: the
# output as /profile, where LLVM_PROFILE_FILE points, and a scratch directory
# as /tmp, regrtest's --tempdir (by default it writes into the build tree).
#
# A test failing in the training run does not fail it, as in CPython's own
# profile-run-stamp: the task is there to exercise the interpreter. A run
# that wrote no profile does.
#
# usage: train-profile.sh HOST_BUILD LLVM_PROFDATA OUTPUT
set -eu
host=$1
profdata=$2
output=$3

# A variable of the host build's Makefile, expanded by make itself.
make_variable() {
    make -s --no-print-directory -C "$host" --eval "print-$1: ; @echo \$($1)" "print-$1"
}
runner=$(make_variable HOSTRUNNER)
task=$(make_variable PROFILE_TASK)
scratch=$(mktemp -d)
echo "training: $runner ... python.wasm $task --tempdir=/tmp"
start=$(date +%s)
# shellcheck disable=SC2086 # the runner and the task are words, as make runs them
$runner --env LLVM_PROFILE_FILE=/profile/python.profraw --dir "$output::/profile" --dir "$scratch::/tmp" \
    "$host/python.wasm" $task --tempdir=/tmp || echo "training: the task failed (exit $?); its profile is used"
echo "training: $(( $(date +%s) - start )) s"
rm -rf "$scratch"
if [ ! -s "$output/python.profraw" ]; then
    echo "training wrote no profile ($output/python.profraw): python.wasm is not instrumented?" >&2
    exit 1
fi
# Not --sparse: a function the task never ran keeps its zero counts, so clang knows it is cold.
"$profdata" merge -o "$output/python.profdata" "$output/python.profraw"
rm "$output/python.profraw"
