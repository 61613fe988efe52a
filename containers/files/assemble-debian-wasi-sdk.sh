#!/bin/sh
# Arrange Debian's LLVM and wasi-libc packages as a WASI SDK directory with the
# official layout (bin/clang, bin/llvm-ar, share/wasi-sysroot, VERSION...).
#
# usage: assemble-debian-wasi-sdk.sh SDK_DIR LLVM_MAJOR "VERSION TEXT"
set -eu
sdk=$1
llvm=/usr/lib/llvm-$2
version_text=$3
sysroot=$sdk/share/wasi-sysroot
resource_dir=$sdk/lib/clang/$2

mkdir -p "$sdk/bin" "$sysroot/include" "$sysroot/lib" "$resource_dir/lib/wasm32-unknown-wasip1"

# The sysroot is a copy (not links) so that libraries built later can be
# installed into it; Debian's wasm32-wasip1 directories are links to wasm32-wasi.
cp -a /usr/include/wasm32-wasi* "$sysroot/include/"
cp -a /usr/lib/wasm32-wasi* "$sysroot/lib/"

# Debian's clang looks for lib/wasm32-unknown-wasip1/libclang_rt.builtins.a in
# its resource directory, while libclang-rt-N-dev-wasm32 ships
# lib/wasi/libclang_rt.builtins-wasm32.a: the SDK gets its own resource
# directory with Debian's builtin headers and that archive where clang looks.
ln -s "$llvm/lib/clang/$2/include" "$resource_dir/include"
cp "$llvm/lib/clang/$2/lib/wasi/libclang_rt.builtins-wasm32.a" \
   "$resource_dir/lib/wasm32-unknown-wasip1/libclang_rt.builtins.a"

# The official SDK's clang defaults to the wasm target and its own sysroot;
# these wrappers give Debian's clang the same defaults.
for tool in clang clang++; do
    cat > "$sdk/bin/$tool" <<WRAPPER
#!/bin/sh
exec $llvm/bin/$tool --target=wasm32-wasip1 --sysroot=$sysroot -resource-dir=$resource_dir "\$@"
WRAPPER
    chmod 755 "$sdk/bin/$tool"
done
cat > "$sdk/bin/clang-cpp" <<WRAPPER
#!/bin/sh
exec $sdk/bin/clang -E "\$@"
WRAPPER
chmod 755 "$sdk/bin/clang-cpp"
for tool in llvm-ar llvm-ranlib llvm-nm llvm-strip llvm-objcopy llvm-objdump llvm-dwarfdump wasm-ld; do
    ln -s "$llvm/bin/$tool" "$sdk/bin/$tool"
done
ln -s llvm-ar "$sdk/bin/ar"
ln -s llvm-ranlib "$sdk/bin/ranlib"
ln -s llvm-strip "$sdk/bin/strip"

echo "$version_text" > "$sdk/VERSION"

# Prove the SDK links a program before anyone relies on it.
printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' > /tmp/sdk-check.c
"$sdk/bin/clang" -O2 /tmp/sdk-check.c -o /tmp/sdk-check.wasm
rm /tmp/sdk-check.c /tmp/sdk-check.wasm
