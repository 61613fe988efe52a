# Rendered from containers/emsdk-debian.Dockerfile.j2 by cpython-wasm-recipes; do not edit.
FROM cpython-wasm/native-debian-trixie:88ef6804a39963f65cc7958401054583
LABEL org.opencontainers.image.title="cpython-wasm emscripten 3.1.69 (Debian trixie packages)" \
      org.opencontainers.image.vendor="cpython-wasm-recipes" \
      io.github.cpython-wasm-recipes.recipe="recipes/toolchains/emsdk/3.1.69.toml"
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      autoconf=2.72-3.1 \
      automake=1:1.17-4 \
      binaryen=120-4 \
      clang-19=1:19.1.7-3+b1 \
      emscripten=3.1.69+dfsg-3 \
      libltdl-dev=2.5.4-4 \
      libtool=2.5.4-4 \
      lld-19=1:19.1.7-3+b1 \
      llvm-19=1:19.1.7-3+b1 \
      nodejs=20.19.2+dfsg-1+deb13u3 \
 && python3 /usr/local/share/cpython-wasm/dpkg-inventory.py > /usr/local/share/cpython-wasm/packages.json \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
# The package's system libraries are prebuilt in its cache: used as they are, never written.
ENV EM_FROZEN_CACHE=1
RUN emcc --version \
 && node --version
