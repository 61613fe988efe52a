# Rendered from containers/native.Dockerfile.j2 by cpython-wasm-recipes; do not edit.
FROM cpython-wasm/base-debian-trixie:0494bbc965090d90a885a650c4799f93
LABEL org.opencontainers.image.title="cpython-wasm native build tools (debian-trixie)" \
      org.opencontainers.image.description="Debian trixie with the pinned native tools that build CPython's build python" \
      org.opencontainers.image.vendor="cpython-wasm-recipes" \
      io.github.cpython-wasm-recipes.recipe="recipes/base/debian-trixie.toml"
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/sh", "-eu", "-c"]
COPY dpkg-inventory.py /usr/local/share/cpython-wasm/dpkg-inventory.py
# Exact versions only; the inventory records every installed package with the
# sha256 that Debian's signed index gives for its .deb.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      gcc=4:14.2.0-1 \
      git=1:2.47.3-0+deb13u1 \
      libc6-dev=2.41-12+deb13u5 \
      libffi-dev=3.4.8-2 \
      make=4.4.1-2 \
      pkg-config=1.8.1-4 \
      python3=3.13.5-1 \
      tcl8.6=8.6.16+dfsg-1 \
      xz-utils=5.8.1-1+deb13u2 \
      zlib1g-dev=1:1.3.dfsg+really1.3.1-1+deb13u1 \
 && python3 /usr/local/share/cpython-wasm/dpkg-inventory.py > /usr/local/share/cpython-wasm/packages.json \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
ENV HOME=/tmp
