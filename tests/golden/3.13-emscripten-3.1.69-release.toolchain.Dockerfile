# Rendered from containers/emsdk-release.Dockerfile.j2 by cpython-wasm-recipes; do not edit.
FROM cpython-wasm/native-debian-trixie:88ef6804a39963f65cc7958401054583
LABEL org.opencontainers.image.title="cpython-wasm emscripten 3.1.69 (emsdk release archive)" \
      org.opencontainers.image.description="emscripten-3.1.69-wasm-binaries-x86_64.tar.xz" \
      org.opencontainers.image.vendor="cpython-wasm-recipes" \
      io.github.cpython-wasm-recipes.recipe="recipes/toolchains/emsdk/3.1.69.toml"
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      autoconf=2.72-3.1 \
      automake=1:1.17-4 \
      libltdl-dev=2.5.4-4 \
      libtool=2.5.4-4 \
      nodejs=20.19.2+dfsg-1+deb13u3 \
 && python3 /usr/local/share/cpython-wasm/dpkg-inventory.py > /usr/local/share/cpython-wasm/packages.json \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
COPY emscripten-3.1.69-wasm-binaries-x86_64.tar.xz /tmp/
# The archive's top directory (install/) is stripped; emsdk's own config
# names the same three roots.
RUN mkdir -p /opt/emsdk \
 && tar -xf /tmp/emscripten-3.1.69-wasm-binaries-x86_64.tar.xz -C /opt/emsdk --strip-components=1 --no-same-owner \
 && rm /tmp/emscripten-3.1.69-wasm-binaries-x86_64.tar.xz \
 && printf "LLVM_ROOT = '%s'\nBINARYEN_ROOT = '%s'\nNODE_JS = '%s'\n" \
      /opt/emsdk/bin /opt/emsdk /usr/bin/node > /opt/emsdk/.emscripten
ENV EM_CONFIG=/opt/emsdk/.emscripten \
    PATH=/opt/emsdk/emscripten:$PATH
RUN emcc --version \
 && node --version
