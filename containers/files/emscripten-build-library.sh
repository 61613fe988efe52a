#!/bin/sh
# Build a C library as a static wasm32-emscripten library with emcc, into
# PREFIX (include/, lib/), where the Emscripten configure arguments of the
# CPython recipes point (ZLIB_CFLAGS, BZIP2_LIBS...) instead of emscripten's
# ports, which download their sources during the build.
#
# usage: emscripten-build-library.sh NAME PREFIX TARBALL
set -eu
name=$1
prefix=$2
tarball=$3
work=$(mktemp -d)
tar -xzf "$tarball" -C "$work" --strip-components=1
cd "$work"
case $name in
    zlib)
        CFLAGS="-O2" emconfigure ./configure --static --prefix="$prefix"
        emmake make libz.a
        emmake make install
        ;;
    bzip2)
        # No configure script: the Makefile's library target, with emcc.
        emmake make libbz2.a CC=emcc AR=emar RANLIB=emranlib CFLAGS="-O2 -D_FILE_OFFSET_BITS=64"
        mkdir -p "$prefix/include" "$prefix/lib"
        cp bzlib.h "$prefix/include/"
        cp libbz2.a "$prefix/lib/"
        ;;
    *)
        echo "emscripten-build-library.sh: no build steps for $name; add them here" >&2
        exit 2
        ;;
esac
cd /
rm -rf "$work"
