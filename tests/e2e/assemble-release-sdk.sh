#!/bin/sh
# For tests only. Assemble, from the Debian LLVM and wasi-libc packages installed
# in the wasi-sdk-25-debian image, a relocatable WASI SDK tarball with the
# official release's layout; it stands in for the official tarball (github.com
# is unreachable here) on a local HTTP server.
#
# usage: assemble-release-sdk.sh NAME LLVM_MAJOR OUTPUT_DIR
#   -> OUTPUT_DIR/NAME.tar.gz holding NAME/{bin,libexec,lib,share/wasi-sysroot,VERSION}
set -eu
name=$1
major=$2
output=$3
llvm=/usr/lib/llvm-$major
work=$(mktemp -d)
sdk=$work/$name
resource=$sdk/lib/clang/$major
mkdir -p "$sdk/bin" "$sdk/libexec" "$sdk/lib" "$sdk/share/wasi-sysroot/include" "$sdk/share/wasi-sysroot/lib" \
         "$resource/lib/wasm32-unknown-wasip1"

# The real tools, each under the name it dispatches on (lld as wasm-ld, llvm-ar as llvm-ranlib...).
for tool in clang clang++ clang-cpp llvm-ar llvm-ranlib llvm-nm llvm-strip llvm-objcopy; do
    cp -L "$llvm/bin/$tool" "$sdk/libexec/$tool"
done
cp -L "$llvm/bin/lld" "$sdk/libexec/wasm-ld"
# Debian's clang runs its linker by a versioned name.
ln -s wasm-ld "$sdk/libexec/wasm-ld-$major"
# The shared libraries they load, except the C library's own.
ldd "$sdk"/libexec/* | awk '/=> \// {print $3}' | sort -u | while read -r library; do
    case $(basename "$library") in
        libc.so*|libm.so*|ld-linux*|libpthread.so*|libdl.so*|librt.so*) ;;
        *) cp -L "$library" "$sdk/lib/" ;;
    esac
done

cp -a /usr/include/wasm32-wasi* "$sdk/share/wasi-sysroot/include/"
cp -a /usr/lib/wasm32-wasi* "$sdk/share/wasi-sysroot/lib/"
cp -rL "$llvm/lib/clang/$major/include" "$resource/include"
cp "$llvm/lib/clang/$major/lib/wasi/libclang_rt.builtins-wasm32.a" "$resource/lib/wasm32-unknown-wasip1/libclang_rt.builtins.a"

# bin/: like the official SDK's tools, they default to the wasm target and the SDK's sysroot.
for tool in clang clang++ clang-cpp; do
    cat > "$sdk/bin/$tool" <<WRAPPER
#!/bin/sh
sdk=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH=\$sdk/lib exec "\$sdk/libexec/$tool" --target=wasm32-wasip1 --sysroot="\$sdk/share/wasi-sysroot" -resource-dir="\$sdk/lib/clang/$major" "\$@"
WRAPPER
done
for tool in llvm-ar llvm-ranlib llvm-nm llvm-strip llvm-objcopy wasm-ld; do
    cat > "$sdk/bin/$tool" <<WRAPPER
#!/bin/sh
sdk=\$(cd "\$(dirname "\$0")/.." && pwd)
LD_LIBRARY_PATH=\$sdk/lib exec "\$sdk/libexec/$tool" "\$@"
WRAPPER
done
chmod 755 "$sdk"/bin/*
ln -s llvm-ar "$sdk/bin/ar"
ln -s llvm-ranlib "$sdk/bin/ranlib"
echo "${name#wasi-sdk-} (test stand-in assembled from Debian packages)" > "$sdk/VERSION"

tar -C "$work" -czf "$output/$name.tar.gz" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 "$name"
rm -rf "$work"
