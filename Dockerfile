# Simulation image (particle-simulation:latest): one `partisim run --json` per container.
# The worker's Docker runner starts it with --network none, so nothing here may need
# the network at run time.
#
#   partisim images build                # wheelhouse + both images (see `partisim images -h`)
#   docker build -t particle-simulation:latest .
#   docker build --build-arg BASE_IMAGE=partisim-base:bookworm --build-arg OFFLINE=1 \
#                --network none -t particle-simulation:latest .
#
# partisim is installed from the local wheelhouse (./wheelhouse, `pip wheel`) when its
# wheels fit the base image's Python; otherwise, online only, it is compiled from the
# source. With OFFLINE=1 the wheelhouse is the only source and a mismatch is an error.
# The build stage is written the same way in Dockerfile.worker, so both images share
# its cached layers.

ARG BASE_IMAGE=python:3.12-slim

FROM ${BASE_IMAGE} AS build
ARG OFFLINE=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Dependencies first (the list from pyproject.toml, the wheels from ./wheelhouse), so a
# change in partisim's source reuses this layer. Best effort: the next step checks.
COPY pyproject.toml /src/pyproject.toml
COPY pyproject.toml wheelhous[e] /src/wheelhouse/
RUN set -eu; \
    python3 -m venv /opt/partisim; \
    pip=/opt/partisim/bin/pip; \
    deps=$(python3 -c 'import tomllib; print(" ".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' 2>/dev/null) || deps=""; \
    if [ -n "$deps" ]; then \
        $pip install --no-index --find-links /src/wheelhouse $deps || \
        { [ "$OFFLINE" != 1 ] && $pip install $deps; } || true; \
    fi
COPY . /src
RUN set -eu; \
    pip=/opt/partisim/bin/pip; \
    if $pip install --no-index --find-links /src/wheelhouse --find-links /src/dist partisim; then \
        echo "partisim: instalado desde el wheelhouse local"; \
    elif [ "$OFFLINE" = 1 ]; then \
        echo "ERROR: OFFLINE=1 y el wheelhouse no sirve para el Python de esta imagen base" \
             "($(python3 -V)); créelo con 'partisim images wheelhouse' usando ese mismo Python." >&2; \
        exit 1; \
    else \
        echo "partisim: sin wheels compatibles; se compila desde el código fuente"; \
        pkgs="gcc libc6-dev"; \
        inc=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["include"])'); \
        [ -e "$inc/Python.h" ] || pkgs="$pkgs python3-dev"; \
        command -v gcc >/dev/null 2>&1 && [ -e "$inc/Python.h" ] || \
            { apt-get update && apt-get install -y --no-install-recommends $pkgs; }; \
        $pip install /src; \
    fi; \
    /opt/partisim/bin/partisim --version

# The compiled engine may link libraries the base image lacks (OpenMP's libgomp on a
# slim Debian): gather every one it needs beyond glibc into /opt/partisim-libs, from
# this stage's system, from wheelhouse/lib (`partisim images` puts the build
# machine's there) or, online only, from Debian's package.
RUN set -eu; \
    mkdir -p /opt/partisim-libs; \
    for so in $(find /opt/partisim -name '_cython*.so'); do \
        ldd "$so" | while read -r name arrow path rest; do \
            case "$name" in linux-vdso*|/*|ld-linux*|libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*) continue;; esac; \
            if [ "$path" = "not" ]; then \
                if [ -e "/src/wheelhouse/lib/$name" ]; then path="/src/wheelhouse/lib/$name"; \
                elif [ "$OFFLINE" != 1 ] && [ "$name" = libgomp.so.1 ]; then \
                    apt-get update && apt-get install -y --no-install-recommends libgomp1; \
                    path=$(ldconfig -p | awk -v n="$name" '$1 == n {print $NF; exit}'); \
                else \
                    echo "ERROR: el motor cython necesita $name y no está en la imagen base ni en wheelhouse/lib" >&2; \
                    exit 1; \
                fi; \
            fi; \
            cp -L "$path" "/opt/partisim-libs/$name"; \
            echo "partisim: $name incluida desde $path"; \
        done; \
    done

FROM ${BASE_IMAGE}
LABEL org.opencontainers.image.title="particle-simulation" \
      org.opencontainers.image.description="Simulación de colisiones de partículas (partisim run --json)"
ENV PATH=/opt/partisim/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 LANG=C.UTF-8 \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MPLCONFIGDIR=/tmp
COPY --from=build /opt/partisim /opt/partisim
COPY --from=build /opt/partisim-libs/ /usr/local/lib/
# The engine must load here, not only in the build stage.
RUN ldconfig && /opt/partisim/bin/python -c 'import partisim.sim.engines._cython'
# A simulation needs no privileges: run as nobody.
USER 65534:65534
WORKDIR /tmp
ENTRYPOINT ["partisim"]
CMD ["run", "--json"]
