#!/bin/sh
# Build zlib as a static wasm32-wasip1 library into the SDK's sysroot, with a
# zlib.pc that pkg-config finds through the PKG_CONFIG_LIBDIR CPython's
# helper sets (sysroot/lib/pkgconfig).
#
# usage: build-zlib.sh SDK_DIR ZLIB_TARBALL
set -eu
sdk=$1
tarball=$2
work=$(mktemp -d)
tar -xzf "$tarball" -C "$work" --strip-components=1
cd "$work"
# zlib.pc paths are relative to the sysroot (prefix=/) because pkg-config
# prepends PKG_CONFIG_SYSROOT_DIR to them.
CC="$sdk/bin/clang" AR="$sdk/bin/llvm-ar" RANLIB="$sdk/bin/llvm-ranlib" CFLAGS="-O2" \
    ./configure --static --prefix=/ --includedir=/include/wasm32-wasip1 --libdir=/lib/wasm32-wasip1
make libz.a
make install DESTDIR="$sdk/share/wasi-sysroot" pkgconfigdir=/lib/pkgconfig
cd /
rm -rf "$work"
