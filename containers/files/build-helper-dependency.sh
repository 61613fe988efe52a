#!/bin/sh
# Build a library that CPython's Emscripten helper (Platforms/emscripten,
# 3.14+) downloads and builds itself in `make-dependencies`, the way it builds
# it, into PREFIX:
#
#   libffi      the release's own Platforms/emscripten/make_libffi.sh, run in
#               the unpacked tarball with PREFIX in the environment
#   mpdecimal   the helper's make_mpdec: `emconfigure configure CFLAGS=-fPIC
#               --prefix PREFIX --disable-shared`, then `make install`
#
# The library stage (cpython_wasm/targets/emscripten.py) runs it in the
# toolchain image, without network, as an unprivileged user, with the pinned
# tarball and the CPython source mounted read-only and PREFIX its one writable
# directory; the host stage then hands PREFIX to configure as the other
# libraries' are (<NAME>_CFLAGS and <NAME>_LIBS), so the helper downloads
# nothing.
#
# usage: build-helper-dependency.sh NAME TARBALL PREFIX HELPER_DIR
set -eu
name=$1
tarball=$2
prefix=$3
helper=$4

# A fixed directory, as build-library.sh's: source paths reach debug sections.
work=/tmp/build-$name
rm -rf "$work"
mkdir -p "$work" "$prefix"
tar -xf "$tarball" -C "$work" --strip-components=1
cd "$work"

case $name in
    libffi)
        # A release tarball has configure; Debian's orig tarball of 3.4.8 is
        # the tag archive, whose configure is generated first.
        [ -f configure ] || autoreconf -fi
        PREFIX=$prefix bash "$helper/make_libffi.sh"
        ;;
    mpdecimal)
        emconfigure ./configure CFLAGS=-fPIC --prefix "$prefix" --disable-shared
        make install
        ;;
    *)
        echo "build-helper-dependency.sh: $name is not a dependency of Platforms/emscripten (libffi, mpdecimal)" >&2
        exit 2
        ;;
esac
cd /
rm -rf "$work"
