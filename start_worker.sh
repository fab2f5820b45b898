#!/usr/bin/env bash
# Inicia un worker de partisim en esta máquina (Linux / macOS).
#
# Detecta la IP y el id del worker, verifica Python y Docker, crea un entorno
# virtual e instala el paquete, construye la imagen de simulación si Docker está
# disponible y falta, e inicia el servicio. Se puede ejecutar las veces que haga
# falta: lo que ya está hecho no se repite.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

IMAGE="${PARTISIM_DOCKER_IMAGE:-particle-simulation:latest}"
PYTHON="${PYTHON:-python3}"
VENV="${PARTISIM_VENV:-$HERE/.venv}"
HOST="${PARTISIM_HOST:-0.0.0.0}"
PORT="${PARTISIM_PORT:-8080}"
WORKER_ID_ARG="${WORKER_ID:-}"
CONFIG=""
RUNNER=""
INSTALL=1
BUILD=1
CHECK_ONLY=0
EXTRA=()

info() { printf '[start_worker] %s\n' "$*"; }
warn() { printf '[start_worker] AVISO: %s\n' "$*" >&2; }
die()  { printf '[start_worker] ERROR: %s\n' "$1" >&2; exit "${2:-1}"; }

usage() {
    cat <<'EOF'
Uso: ./start_worker.sh [opciones] [-- opciones extra de 'partisim worker']

Prepara esta máquina como worker de partisim y lo inicia:
  1. verifica Python (>= 3.10) y crea un entorno virtual (.venv);
  2. instala el paquete partisim y sus dependencias (requirements_worker.txt),
     solo si el código cambió desde la última instalación;
  3. detecta la IP y el id del worker (según config_workers.json);
  4. verifica Docker y construye la imagen particle-simulation:latest si falta;
  5. inicia el servicio worker (Ctrl-C o SIGTERM lo detienen ordenadamente).

Opciones:
  --host DIRECCIÓN   dirección en la que escuchar (por defecto 0.0.0.0)   [PARTISIM_HOST]
  --port PUERTO      puerto (por defecto 8080)                            [PARTISIM_PORT]
  --worker-id ID     id del worker (por defecto: según la IP)             [WORKER_ID]
  --config RUTA      archivo de workers (por defecto ./config_workers.json)
  --runner TIPO      auto | process | docker (por defecto auto)
  --venv CARPETA     entorno virtual a usar o crear (por defecto ./.venv) [PARTISIM_VENV]
  --python EJECUTABLE  intérprete para crear el entorno (por defecto python3) [PYTHON]
  --no-install       no instala nada: usa el entorno virtual tal como está
  --no-build         no construye la imagen Docker aunque falte
  --check            solo verifica e instala; no inicia el servicio
  -h, --help         muestra esta ayuda

Ejemplos:
  ./start_worker.sh
  ./start_worker.sh --port 8081 --worker-id worker-03
  ./start_worker.sh -- --capacity 2 --max-timeout 300
EOF
}

need_value() { [ $# -ge 2 ] && [ -n "$2" ] || die "la opción $1 necesita un valor (vea --help)" 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        -h|--help) usage; exit 0 ;;
        --host) need_value "$@"; HOST="$2"; shift 2 ;;
        --port) need_value "$@"; PORT="$2"; shift 2 ;;
        --worker-id) need_value "$@"; WORKER_ID_ARG="$2"; shift 2 ;;
        --config) need_value "$@"; CONFIG="$2"; shift 2 ;;
        --runner) need_value "$@"; RUNNER="$2"; shift 2 ;;
        --venv) need_value "$@"; VENV="$2"; shift 2 ;;
        --python) need_value "$@"; PYTHON="$2"; shift 2 ;;
        --no-install) INSTALL=0; shift ;;
        --no-build) BUILD=0; shift ;;
        --check) CHECK_ONLY=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        *) die "opción desconocida: $1 (vea ./start_worker.sh --help)" 2 ;;
    esac
done

case "$PORT" in ''|*[!0-9]*) die "--port debe ser un número (recibido '$PORT')" 2 ;; esac
if [ -n "$RUNNER" ]; then
    case "$RUNNER" in auto|process|docker) ;; *) die "--runner debe ser auto, process o docker (recibido '$RUNNER')" 2 ;; esac
fi

# 1. Python y entorno virtual --------------------------------------------------
VPY="$VENV/bin/python"
if [ ! -x "$VPY" ]; then
    [ "$INSTALL" = 1 ] || die "no existe el entorno virtual $VENV (quite --no-install para crearlo)"
    command -v "$PYTHON" >/dev/null 2>&1 || die "no se encontró $PYTHON; instale Python 3.10 o superior (p. ej. apt install python3 python3-venv)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "se necesita Python 3.10 o superior; $PYTHON es $("$PYTHON" -V 2>&1)"
    info "Creando el entorno virtual en $VENV ($("$PYTHON" -V 2>&1))"
    "$PYTHON" -m venv "$VENV" || die "no se pudo crear el entorno virtual (¿falta python3-venv? apt install python3-venv)"
fi
"$VPY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "el entorno $VENV usa $("$VPY" -V 2>&1); se necesita Python 3.10 o superior"
info "Python: $("$VPY" -V 2>&1) en $VENV"

# 2. Instalación (solo si el código cambió) -------------------------------------
fingerprint() {
    {
        for f in pyproject.toml setup.py requirements_worker.txt; do [ -f "$f" ] && cat "$f"; done
        find src -type f \( -name '*.py' -o -name '*.pyx' -o -name '*.pxd' \) -print 2>/dev/null | LC_ALL=C sort \
            | while IFS= read -r f; do printf '%s\n' "$f"; cat "$f"; done
    } | "$VPY" -c 'import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())'
}
STAMP="$VENV/.partisim-worker-install"
if [ "$INSTALL" = 1 ]; then
    WANT="$(fingerprint)"
    HAVE="$(cat "$STAMP" 2>/dev/null || true)"
    if [ "$WANT" = "$HAVE" ] && "$VPY" -c 'import partisim.worker' >/dev/null 2>&1; then
        info "Paquete partisim ya instalado y al día"
    else
        command -v cc >/dev/null 2>&1 || command -v gcc >/dev/null 2>&1 \
            || warn "no hay compilador de C: si la instalación falla, instale build-essential y python3-dev"
        info "Instalando partisim y sus dependencias (requirements_worker.txt)..."
        # With a ./wheelhouse (partisim images wheelhouse), install offline from it only.
        OFFLINE_PIP=()
        [ -d wheelhouse ] && OFFLINE_PIP=(--no-index --find-links "$HERE/wheelhouse") && info "Sin descargas: desde ./wheelhouse"
        "$VPY" -m pip install --disable-pip-version-check -q ${OFFLINE_PIP[@]+"${OFFLINE_PIP[@]}"} -r requirements_worker.txt \
            || die "falló la instalación; revise los mensajes de pip de arriba"
        printf '%s\n' "$WANT" > "$STAMP"
        info "Instalación completada"
    fi
fi
"$VPY" -c 'import partisim.worker' >/dev/null 2>&1 \
    || die "partisim no está instalado en $VENV (ejecute sin --no-install)"

# 3. IP e id del worker -----------------------------------------------------------
ARGS=(--host "$HOST" --port "$PORT")
[ -n "$WORKER_ID_ARG" ] && ARGS+=(--worker-id "$WORKER_ID_ARG")
[ -n "$CONFIG" ] && ARGS+=(--config "$CONFIG")
[ -n "$RUNNER" ] && ARGS+=(--runner "$RUNNER")
WHO="$("$VPY" -m partisim worker "${ARGS[@]}" --whoami)" || exit $?
read -r DETECTED_ID DETECTED_IP <<<"$WHO"
info "IP detectada: $DETECTED_IP"
info "Worker ID: $DETECTED_ID"

# 4. Docker e imagen ---------------------------------------------------------------
if [ "$RUNNER" = "process" ]; then
    info "Runner process: no se necesita Docker"
elif ! command -v docker >/dev/null 2>&1; then
    warn "Docker no está instalado: el worker ejecutará las tareas en procesos locales"
elif ! docker info >/dev/null 2>&1; then
    warn "Docker está instalado pero no responde (¿servicio detenido o sin permisos?): se usarán procesos locales"
elif docker image inspect "$IMAGE" >/dev/null 2>&1; then
    info "Docker disponible; imagen $IMAGE presente"
elif [ "$BUILD" = 0 ]; then
    warn "falta la imagen $IMAGE y se indicó --no-build: se usarán procesos locales"
elif [ ! -f Dockerfile ]; then
    warn "falta la imagen $IMAGE y no hay Dockerfile en $HERE: se usarán procesos locales"
else
    info "Construyendo la imagen $IMAGE (la primera vez tarda unos minutos)..."
    BUILD_CMD=(docker build -t "$IMAGE" .)
    # With a ./wheelhouse, build offline from it only (docker build --network none).
    [ -d wheelhouse ] && BUILD_CMD=("$VPY" -m partisim images build --offline --only simulation --sim-tag "$IMAGE")
    if "${BUILD_CMD[@]}"; then
        info "Imagen $IMAGE construida"
    else
        warn "no se pudo construir la imagen $IMAGE: se usarán procesos locales"
    fi
fi

if [ "$CHECK_ONLY" = 1 ]; then
    info "Verificación completa (--check): el servicio no se inicia"
    exit 0
fi

# 5. Servicio -------------------------------------------------------------------------
info "Iniciando el worker $DETECTED_ID en $HOST:$PORT (Ctrl-C para detenerlo)"
exec "$VPY" -m partisim worker "${ARGS[@]}" ${EXTRA[@]+"${EXTRA[@]}"}
