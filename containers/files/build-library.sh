#!/bin/sh
# Build one C library of recipes/libraries/ as a static library for a
# WebAssembly target, installed into PREFIX (include/, lib/, lib/pkgconfig/).
#
# The library stage (cpython_wasm/targets/target.py) runs it in the target's
# toolchain image, without network, as an unprivileged user, with the pinned
# tarball mounted read-only and PREFIX its one writable directory; the host
# stage then mounts PREFIX read-only where the same paths lead, and CPython's
# configure reads <NAME>_CFLAGS and <NAME>_LIBS pointing into it. CFLAGS holds
# the recipe's options (each with its reason there).
#
# usage: build-library.sh TARGET NAME TARBALL PREFIX
set -eu
target=$1
name=$2
tarball=$3
prefix=$4

case $target in
    wasi)
        export CC="$WASI_SDK_PATH/bin/clang" AR="$WASI_SDK_PATH/bin/llvm-ar" RANLIB="$WASI_SDK_PATH/bin/llvm-ranlib"
        # config.sub of these tarballs knows wasi, not wasip1: the same ABI.
        host=wasm32-unknown-wasi
        wrap=
        ;;
    emscripten)
        export CC=emcc AR=emar RANLIB=emranlib
        host=wasm32-unknown-emscripten
        wrap=emconfigure
        ;;
    *)
        echo "build-library.sh: unknown target $target (wasi, emscripten)" >&2
        exit 2
        ;;
esac
export CFLAGS="-O2 ${CFLAGS:-}"

# A fixed directory, not mktemp's: source paths reach assert() messages and
# debug sections, and python.wasm must not depend on a random name.
work=/tmp/build-$name
rm -rf "$work"
mkdir -p "$work" "$prefix/include" "$prefix/lib"
tar -xf "$tarball" -C "$work" --strip-components=1
cd "$work"

case $name in
    zlib)
        # zlib's configure takes CC and CFLAGS from the environment, no --host.
        $wrap ./configure --static --prefix="$prefix"
        make libz.a
        make install
        ;;
    bzip2)
        # No configure script: the Makefile's library target.
        make libbz2.a CC="$CC" AR="$AR" RANLIB="$RANLIB" CFLAGS="$CFLAGS"
        cp bzlib.h "$prefix/include/"
        cp libbz2.a "$prefix/lib/"
        ;;
    sqlite)
        # The amalgamation (sqlite3.c, sqlite3.h) is generated with the native
        # compiler and tclsh, then compiled for the target as one file.
        mkdir native
        (cd native && CC=gcc CFLAGS= ../configure --disable-tcl && make sqlite3.c)
        "$CC" $CFLAGS -c native/sqlite3.c -o sqlite3.o
        "$AR" rcs libsqlite3.a sqlite3.o
        cp native/sqlite3.h src/sqlite3ext.h "$prefix/include/"
        cp libsqlite3.a "$prefix/lib/"
        ;;
    xz)
        $wrap ./configure --host="$host" --prefix="$prefix" --enable-static --disable-shared \
            --disable-threads --disable-nls --disable-xz --disable-xzdec --disable-lzmadec \
            --disable-lzmainfo --disable-lzma-links --disable-scripts --disable-doc
        make -C src/liblzma
        make -C src/liblzma install
        ;;
    libffi)
        # As CPython's Emscripten helper builds it: libffi's config.sub calls
        # the wasm32 Emscripten port wasm32-unknown-linux.
        [ "$target" = emscripten ] || { echo "build-library.sh: libffi has no port for $target" >&2; exit 2; }
        # A tag archive: configure is generated first (autotools of the image).
        autoreconf -fi
        $wrap ./configure --host=wasm32-unknown-linux --prefix="$prefix" --enable-static --disable-shared \
            --disable-dependency-tracking --disable-builddir --disable-multi-os-directory --disable-raw-api \
            --disable-docs
        make install
        ;;
    *)
        echo "build-library.sh: no build steps for $name; add them here" >&2
        exit 2
        ;;
esac
cd /
rm -rf "$work"
