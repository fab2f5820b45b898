#!/usr/bin/env bash
# Make a real Docker engine available for the `docker` test suite, idempotently:
#   1. install docker.io, debootstrap and docker-compose if missing (Debian packages);
#   2. start dockerd in the background if `docker info` fails, with the flags this
#      sandbox allows (vfs storage, no iptables, no default bridge: containers run
#      with --network none or host);
#   3. make sure the base image partisim-base:bookworm exists, importing it from the
#      cached rootfs tarball or, the first time, building it with debootstrap from
#      the machine's own Debian mirror (Docker Hub is not reachable here).
# Exit status: 0 when the engine answers and the base image exists.
# Environment: PARTISIM_BASE_IMAGE, PARTISIM_CACHE_DIR, PARTISIM_DEBIAN_MIRROR,
#              PARTISIM_DOCKER_DEADLINE (seconds to wait for the engine, default 60).
set -euo pipefail

BASE_IMAGE="${PARTISIM_BASE_IMAGE:-partisim-base:bookworm}"
SUITE="${BASE_IMAGE##*:}"
CACHE_DIR="${PARTISIM_CACHE_DIR:-/var/cache/partisim}"
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE.tar"
DEADLINE="${PARTISIM_DOCKER_DEADLINE:-60}"
DOCKERD_LOG="${PARTISIM_DOCKERD_LOG:-/var/log/partisim-dockerd.log}"
DATA_ROOT="${PARTISIM_DOCKER_DATA_ROOT:-/var/lib/docker}"

log() { printf '[docker.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

storage_driver() {
    # overlay2 when this kernel mounts overlayfs on the data root's filesystem: a container
    # then starts in well under a second. vfs (always works) copies the whole image for
    # every container: 15 s and more for a 350 MB image with thousands of files.
    if [[ -n ${PARTISIM_DOCKER_STORAGE_DRIVER:-} ]]; then echo "$PARTISIM_DOCKER_STORAGE_DRIVER"; return; fi
    local probe driver=vfs
    mkdir -p "$DATA_ROOT"
    probe=$(mktemp -d "$DATA_ROOT/.overlay-probe.XXXXXX")
    mkdir -p "$probe"/{lower,upper,work,merged}
    if mount -t overlay overlay -o "lowerdir=$probe/lower,upperdir=$probe/upper,workdir=$probe/work" \
        "$probe/merged" 2>/dev/null; then
        umount "$probe/merged"
        driver=overlay2
    fi
    rm -rf "$probe"
    echo "$driver"
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    # Compose v1 from Debian (the v2 plugin is not packaged in bookworm): docker-compose.yml's test.
    command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
    ((${#missing[@]})) || return 0
    [[ $(id -u) == 0 ]] || die "faltan ${missing[*]} y no soy root para instalarlos"
    log "instalando ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt run may hold the dpkg lock: wait for it instead of failing.
    local wait=(-o DPkg::Lock::Timeout=600)
    apt-get "${wait[@]}" update -qq
    apt-get "${wait[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

start_engine() {
    engine_up && { log "dockerd ya responde"; return 0; }
    [[ $(id -u) == 0 ]] || die "dockerd no responde y no soy root para arrancarlo"
    command -v dockerd >/dev/null 2>&1 || die "no hay dockerd instalado"
    # A pid file left by a dockerd that was killed (not by a live one) blocks a restart.
    if [[ -f /var/run/docker.pid ]] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
        rm -f /var/run/docker.pid
    fi
    if ! pgrep -x dockerd >/dev/null 2>&1; then
        local flags=(--storage-driver="$(storage_driver)" --data-root="$DATA_ROOT"
                     --iptables=false --ip6tables=false --bridge=none)
        log "arrancando dockerd ${flags[*]} (registro: $DOCKERD_LOG)"
        mkdir -p "$(dirname "$DOCKERD_LOG")"
        setsid nohup dockerd "${flags[@]}" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    fi
    local end=$((SECONDS + DEADLINE))
    until engine_up; do
        ((SECONDS < end)) || { tail -n 20 "$DOCKERD_LOG" >&2 || true; die "dockerd no respondió en ${DEADLINE} s"; }
        sleep 0.5
    done
    log "dockerd responde ($(docker version --format '{{.Server.Version}}'))"
}

debian_mirror() {
    # The mirror this machine's apt already uses (deb822 "URIs:" or one-line "deb URL").
    if [[ -n ${PARTISIM_DEBIAN_MIRROR:-} ]]; then echo "$PARTISIM_DEBIAN_MIRROR"; return; fi
    local url
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null |
        awk '/^URIs:/ {print $2} /^deb / {for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) {print $i; break}}' |
        grep -E '/debian/?$' | head -n 1 || true)
    echo "${url:-http://deb.debian.org/debian}"
}

build_rootfs_tar() {
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d /var/tmp/partisim-rootfs.XXXXXX)
    chmod 755 "$rootfs"  # it becomes the image's /: mktemp's 0700 would lock out non-root users
    log "debootstrap $SUITE desde $mirror (unos 40 s)"
    debootstrap --variant=minbase --include=python3,python3-venv "$SUITE" "$rootfs" "$mirror" >/dev/null
    # Nothing at run time needs the downloaded .debs, package lists, docs or locales.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
        "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
        "$rootfs"/usr/share/locale/*
    mkdir -p "$CACHE_DIR"
    tar -C "$rootfs" -cf "$ROOTFS_TAR.part" .
    mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
    rm -rf "$rootfs"
}

ensure_base_image() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
        log "imagen base $BASE_IMAGE presente"
        return 0
    fi
    [[ -s $ROOTFS_TAR ]] || build_rootfs_tar
    log "importando $ROOTFS_TAR como $BASE_IMAGE"
    docker import --change 'ENV LANG=C.UTF-8' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["/bin/bash"]' \
        "$ROOTFS_TAR" "$BASE_IMAGE" >/dev/null
}

main() {
    mkdir -p /var/lock 2>/dev/null || true
    # Two callers at once (CI and a test's conftest) must not start two engines.
    exec 9>/var/lock/partisim-docker.lock
    flock -w 900 9 || die "otro docker.sh sigue trabajando"
    install_packages
    start_engine
    ensure_base_image
}

main "$@"
