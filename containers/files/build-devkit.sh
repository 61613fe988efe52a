#!/bin/sh
# Install what it takes to compile and link C code against one WASI build of
# CPython into OUTPUT, laid out as a prefix (lib/, include/): the devkit.
#
# The devkit stage (cpython_wasm/targets/wasi.py) runs it in the toolchain
# image that built python.wasm, without network, as an unprivileged user,
# with the host build and the C libraries mounted read-only. CPython's own
# install targets do the work: `libainstall` (libpython3.X.a, python.o, the
# config-3.X-wasm32-wasi/ directory with the Makefile, Setup* and
# config.c.in to relink python.wasm with more built-in modules, pkg-config
# files, python3.X-config) and `inclinstall` (the headers and pyconfig.h).
# The host build is read-only and complete (its stage ran `make all`), so
# `all` is not remade (-o all: newer lines would regenerate files such as
# build-details.json in it), and the two scripts `libainstall` would write
# into it (idle, pydoc: nothing a devkit needs) go to /tmp and are dropped.
# Then what python.wasm links besides libpython: the sysconfig data, the
# archives CPython builds in its tree (libmpdec, expat, HACL) and each C
# library of the recipe (its archive and headers), all into lib/ and include/.
#
# usage: build-devkit.sh HOST_BUILD OUTPUT [LIBRARY_PREFIX...]
set -eu
host=$1
output=$2
shift 2

cd "$host"
make -o all libainstall inclinstall DESTDIR="$output" prefix= MKDIR_P=true \
    SCRIPT_IDLE=/tmp/idle SCRIPT_PYDOC=/tmp/pydoc
rm -f "$output"/bin/idle* "$output"/bin/pydoc*
version=$(sed -n 's/^VERSION=[[:space:]]*//p' Makefile)
# libainstall puts the static libpython into config-3.X-*/ only; once, in lib/,
# beside the archives it links with (python3.X-config's --ldflags names both).
mv "$output"/lib/python"$version"/config-*/libpython"$version".a "$output/lib/"
cp build/lib.*/_sysconfigdata_*.py "$output/lib/python$version/"
for archive in Modules/_decimal/libmpdec/libmpdec.a Modules/expat/libexpat.a Modules/_hacl/*.a; do
    if [ -f "$archive" ]; then cp "$archive" "$output/lib/"; fi
done
for prefix in "$@"; do
    cp "$prefix"/lib/*.a "$output/lib/"
    cp -R "$prefix/include/." "$output/include/"
done
