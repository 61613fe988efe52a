# Rendered from containers/wasi-sdk-debian.Dockerfile.j2 by cpython-wasm-recipes; do not edit.
FROM cpython-wasm/native-debian-trixie:88ef6804a39963f65cc7958401054583
LABEL org.opencontainers.image.title="cpython-wasm WASI SDK 25 (Debian trixie packages)" \
      org.opencontainers.image.description="25.0 (Debian trixie: clang 19.1.7, wasi-libc 0.0~git20241209.574b88d)" \
      org.opencontainers.image.vendor="cpython-wasm-recipes" \
      io.github.cpython-wasm-recipes.recipe="recipes/toolchains/wasi-sdk/25.toml"
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      clang-19=1:19.1.7-3+b1 \
      libclang-rt-19-dev-wasm32=1:19.1.7-3 \
      lld-19=1:19.1.7-3+b1 \
      llvm-19=1:19.1.7-3+b1 \
      wasi-libc=0.0~git20241209.574b88d-2 \
 && python3 /usr/local/share/cpython-wasm/dpkg-inventory.py > /usr/local/share/cpython-wasm/packages.json \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY assemble-debian-wasi-sdk.sh /usr/local/share/cpython-wasm/
RUN /usr/local/share/cpython-wasm/assemble-debian-wasi-sdk.sh /opt/wasi-sdk 19 "25.0 (Debian trixie: clang 19.1.7, wasi-libc 0.0~git20241209.574b88d)"
# The wasm runtime: wasmtime 50.0.1 from its verified wheel (a wheel is a zip of
# the package, unpacked into Debian's site directory for local packages), and
# cpython_wasm/runtime.py as the `wasmtime` command, the subset of `wasmtime run`
# that CPython's build helpers use in their default host runners.
COPY wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl runtime.py /tmp/
RUN python3 -m zipfile -e /tmp/wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl "$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && install -m 755 /tmp/runtime.py /usr/local/bin/wasmtime \
 && rm /tmp/wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl /tmp/runtime.py \
 && wasmtime run --help > /dev/null
ENV WASI_SDK_PATH=/opt/wasi-sdk
