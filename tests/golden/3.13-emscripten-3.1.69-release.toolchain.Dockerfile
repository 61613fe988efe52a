# Rendered from containers/emsdk-release.Dockerfile.j2 by cpython-wasm-recipes; do not edit.
FROM cpython-wasm/native-debian-trixie:6c7e9b62aaf7a56302c443401d634b55
LABEL org.opencontainers.image.title="cpython-wasm emscripten 3.1.69 (emsdk release archive)" \
      org.opencontainers.image.description="emscripten-3.1.69-wasm-binaries-x86_64.tar.xz" \
      org.opencontainers.image.vendor="cpython-wasm-recipes" \
      io.github.cpython-wasm-recipes.recipe="recipes/toolchains/emsdk/3.1.69.toml"
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
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
# C libraries, each built from its pinned source tarball into /opt/emscripten-prefix.
COPY emscripten-build-library.sh /usr/local/share/cpython-wasm/
COPY zlib_1.3.dfsg+really1.3.1.orig.tar.gz /tmp/libraries/
RUN /usr/local/share/cpython-wasm/emscripten-build-library.sh zlib /opt/emscripten-prefix /tmp/libraries/zlib_1.3.dfsg+really1.3.1.orig.tar.gz \
 && rm -rf /tmp/libraries
COPY bzip2_1.0.8.orig.tar.gz /tmp/libraries/
RUN /usr/local/share/cpython-wasm/emscripten-build-library.sh bzip2 /opt/emscripten-prefix /tmp/libraries/bzip2_1.0.8.orig.tar.gz \
 && rm -rf /tmp/libraries
RUN emcc --version \
 && node --version
