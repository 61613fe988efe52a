# Rendered from containers/emsdk-debian.Dockerfile.j2 by cpython-wasm-recipes; do not edit.
FROM cpython-wasm/native-debian-trixie:6c7e9b62aaf7a56302c443401d634b55
LABEL org.opencontainers.image.title="cpython-wasm emscripten 3.1.69 (Debian trixie packages)" \
      org.opencontainers.image.vendor="cpython-wasm-recipes" \
      io.github.cpython-wasm-recipes.recipe="recipes/toolchains/emsdk/3.1.69.toml"
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/sh", "-eu", "-c"]
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      binaryen=120-4 \
      clang-19=1:19.1.7-3+b1 \
      emscripten=3.1.69+dfsg-3 \
      lld-19=1:19.1.7-3+b1 \
      llvm-19=1:19.1.7-3+b1 \
      nodejs=20.19.2+dfsg-1+deb13u3 \
 && python3 /usr/local/share/cpython-wasm/dpkg-inventory.py > /usr/local/share/cpython-wasm/packages.json \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
# The package's system libraries are prebuilt in its cache: used as they are, never written.
ENV EM_FROZEN_CACHE=1
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
