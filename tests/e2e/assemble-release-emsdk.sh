#!/bin/sh
# For tests only. Assemble, from Debian's emscripten, LLVM and binaryen packages
# installed in the emsdk-3.1.69-debian image, a relocatable toolchain archive
# with the layout of emsdk's prebuilt "wasm-binaries" archive; it stands in
# for the official one (storage.googleapis.com is unreachable here) on a local
# HTTP server.
#
# usage: assemble-release-emsdk.sh LLVM_MAJOR OUTPUT_FILE
#   -> OUTPUT_FILE (.tar.xz) holding install/{bin,lib,emscripten}
set -eu
major=$1
output=$2
llvm=/usr/lib/llvm-$major
work=$(mktemp -d)
install=$work/install
mkdir -p "$install/bin" "$install/libexec" "$install/lib"

# emscripten itself, without Debian's prebuilt cache (an official archive's
# cache is filled on first use), and the one node module Debian unbundles.
mkdir "$install/emscripten"
(cd /usr/share/emscripten && tar -cf - --exclude=./cache --exclude=./.emscripten .) | tar -xf - -C "$install/emscripten"
mkdir "$install/emscripten/node_modules"
cp -rL /usr/share/nodejs/acorn "$install/emscripten/node_modules/acorn"

# The real tools under their plain names, and the shared libraries they load.
for tool in clang clang++ llvm-ar llvm-ranlib llvm-nm llvm-objcopy llvm-strip llvm-dwarfdump llvm-symbolizer; do
    cp -L "$llvm/bin/$tool" "$install/libexec/$tool"
done
cp -L "$llvm/bin/lld" "$install/libexec/wasm-ld"
for tool in wasm-opt wasm-metadce wasm-split wasm-emscripten-finalize wasm-ctor-eval wasm-dis wasm-as; do
    [ -x "/usr/bin/$tool" ] && cp -L "/usr/bin/$tool" "$install/libexec/$tool"
done
ldd "$install"/libexec/* | awk '/=> \// {print $3}' | sort -u | while read -r library; do
    case $(basename "$library") in
        libc.so*|libm.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
        *) cp -L "$library" "$install/lib/" ;;
    esac
done
# clang finds its own headers relative to its binary.
mkdir -p "$install/lib/clang"
cp -rL "$llvm/lib/clang/$major" "$install/lib/clang/$major"
for tool in "$install"/libexec/*; do
    name=$(basename "$tool")
    extra=""
    case $name in clang|clang++) extra="-resource-dir=\"\$root/lib/clang/$major\"" ;; esac
    cat > "$install/bin/$name" <<WRAPPER
#!/bin/sh
root=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH=\$root/lib exec "\$root/libexec/$name" $extra "\$@"
WRAPPER
done
chmod 755 "$install"/bin/*

tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - install | xz -T0 -1 > "$output"
rm -rf "$work"
