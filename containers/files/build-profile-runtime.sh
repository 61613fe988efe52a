#!/bin/sh
# Build compiler-rt's profile runtime (libclang_rt.profile) for wasm32-wasip1,
# which neither Debian nor the WASI SDK ships, into PREFIX/lib: what an
# instrumented python.wasm links for profile-guided optimisation.
#
# The profile-runtime stage (cpython_wasm/targets/pgo.py) runs it in the WASI
# toolchain image, without network, as an unprivileged user, with the pinned
# LLVM source tarball and the patch mounted read-only and PREFIX its one
# writable directory. Only compiler-rt/lib/profile and the headers it includes
# are taken out of the tarball; the patch (its header says why) is applied
# with git, which the image has for CPython's own build.
#
# usage: build-profile-runtime.sh TARBALL TOPDIR PATCH PREFIX SOURCE...
set -eu
tarball=$1
top=$2
patch=$3
prefix=$4
shift 4

work=$(mktemp -d)
tar -C "$work" -xJf "$tarball" "$top/compiler-rt/lib/profile" "$top/compiler-rt/include/profile"
cd "$work/$top"
git apply "$patch"

# What the runtime needs of wasi-libc's emulations (mman for its buffers,
# getpid for %p in LLVM_PROFILE_FILE) and says it may use: atomics and uname
# exist on wasm32-wasip1. -O2 as compiler-rt builds it; no -g, so the objects
# name no build path.
flags="--target=wasm32-wasip1 -O2 -I compiler-rt/include -I compiler-rt/lib -D_WASI_EMULATED_MMAN
 -D_WASI_EMULATED_GETPID -DCOMPILER_RT_HAS_ATOMICS=1 -DCOMPILER_RT_HAS_UNAME=1"
mkdir "$work/objects"
for source in "$@"; do
    case $source in
        *.cpp) compiler="$WASI_SDK_PATH/bin/clang++ -fno-exceptions -fno-rtti" ;;
        *) compiler="$WASI_SDK_PATH/bin/clang" ;;
    esac
    # shellcheck disable=SC2086 # the flags are words
    $compiler $flags -c "compiler-rt/lib/profile/$source" -o "$work/objects/${source%.*}.o"
done
mkdir -p "$prefix/lib"
# D: no timestamps, owners or modes in the archive.
(cd "$work/objects" && "$WASI_SDK_PATH/bin/llvm-ar" rcsD "$prefix/lib/libclang_rt.profile-wasm32.a" ./*.o)
rm -rf "$work"
