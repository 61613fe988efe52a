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
# The wasm runtime: the wasmtime CLI 49.0.3 as `wasmtime`, the executable taken out of
# its verified archive (cpython_wasm/inputs/tools.py) and checked again here by its sha256. It is
# CPython's host runner (each line's build helper runs `wasmtime run ...`), and it runs python.wasm
# wherever a build, a test or a benchmark does. wasmtime 50.0.1's Python package, from its
# verified wheel (a zip, unpacked into Debian's site directory for local packages), is for `invoke
# bench`'s in-process rows: an embedder's view of startup.
COPY wasmtime wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl /tmp/
RUN printf '%s  %s\n' b213b0678c0afc807c53130e5b7ca357f0307c1f8deb18cac35fcc65480b9c85 /tmp/wasmtime > /tmp/wasmtime.sha256 \
 && sha256sum -c /tmp/wasmtime.sha256 \
 && install -m 755 /tmp/wasmtime /usr/local/bin/wasmtime \
 && python3 -m zipfile -e /tmp/wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl "$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
 && rm /tmp/wasmtime-50.0.1-py3-none-manylinux1_x86_64.whl /tmp/wasmtime /tmp/wasmtime.sha256 \
 && wasmtime --version
ENV WASI_SDK_PATH=/opt/wasi-sdk
