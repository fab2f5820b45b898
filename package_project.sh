#!/usr/bin/env bash
# Empaqueta lo que necesita una máquina worker o el orquestador en
# particle-simulation-ETAPA4-YYYYMMDD-HHMMSS.tar.gz (código del paquete, scripts
# de la raíz, Dockerfiles, requirements, configuración, README y docs/) y nada más, todo
# dentro de la carpeta TAREA/ como en las instrucciones de la ETAPA 4.
#
# Uso: ./package_project.sh [-o DIRECTORIO]     (o PACKAGE_OUTPUT_DIR=DIRECTORIO)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT_DIR="${PACKAGE_OUTPUT_DIR:-$ROOT}"

usage() {
    cat <<'EOF'
Uso: ./package_project.sh [-o DIRECTORIO]

Crea particle-simulation-ETAPA4-YYYYMMDD-HHMMSS.tar.gz con lo necesario para
una máquina worker o para el orquestador. Los archivos quedan dentro de la
carpeta TAREA/ del tar:

  tar -xzf particle-simulation-ETAPA4-*.tar.gz && cd TAREA/ && ./start_worker.sh

Opciones:
  -o, --output DIR   carpeta donde dejar el tar.gz (por defecto, la del proyecto;
                     también con la variable PACKAGE_OUTPUT_DIR)
  -h, --help         muestra esta ayuda
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        -o|--output)
            [ $# -ge 2 ] || { echo "Error: falta el directorio después de $1" >&2; exit 2; }
            OUT_DIR="$2"; shift 2 ;;
        --output=*) OUT_DIR="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "Error: opción desconocida: $1" >&2; usage >&2; exit 2 ;;
    esac
done

if [ ! -d "$OUT_DIR" ]; then
    echo "Error: el directorio de salida no existe: $OUT_DIR" >&2
    exit 2
fi
OUT_DIR="$(cd "$OUT_DIR" && pwd)"

STAMP="$(date +%Y%m%d-%H%M%S)"
NAME="particle-simulation-ETAPA4-${STAMP}.tar.gz"
TARGET="$OUT_DIR/$NAME"

LIST="$(mktemp)"
FILTERED="$(mktemp)"
PARTIAL="$TARGET.partial"
# TAREA/ in the tar comes from a symlink to the project in a scratch folder: tar
# follows it in the middle of each path, so no file is copied and any tar works.
STAGE="$(mktemp -d)"
cleanup() {
    rm -f "$LIST" "$FILTERED" "$PARTIAL" "$STAGE/TAREA"
    rmdir "$STAGE" 2>/dev/null || true
}
trap cleanup EXIT

cd "$ROOT"

# Root files by name: scripts, build files, Docker, requirements, config, docs.
for pattern in '*.py' '*.sh' '*.bat' 'pyproject.toml' 'MANIFEST.in' 'Dockerfile' 'Dockerfile.*' \
               '.dockerignore' 'requirements*.txt' 'config_workers.json' 'README*' 'LICENSE*'; do
    for f in $pattern; do
        if [ -f "$f" ]; then printf '%s\n' "$f"; fi
    done
done >> "$LIST"

# The model and architecture documents the README links to (Markdown only).
if [ -d docs ]; then
    find docs -type f -name '*.md' -print >> "$LIST"
fi

# The package source, without build outputs, caches, databases or logs.
if [ -d src ]; then
    find src \
        \( -name '__pycache__' -o -name '*.egg-info' -o -name '.pytest_cache' -o -name '.mypy_cache' \
           -o -name '.ruff_cache' -o -name 'build' -o -name 'dist' \) -prune \
        -o -type f \
           ! -name '*.pyc' ! -name '*.pyo' ! -name '*.so' ! -name '*.pyd' ! -name '*.o' \
           ! -name '*.db' ! -name '*.db-*' ! -name '*.sqlite*' ! -name '*.log' \
           ! -name '*.tar.gz' ! -name '*.partial' ! -name '.DS_Store' \
           -print >> "$LIST"
fi

# Cython writes foo.c next to foo.pyx: a build output, regenerated on install.
while IFS= read -r f; do
    case "$f" in
        *.c) if [ -f "${f%.c}.pyx" ]; then continue; fi ;;
    esac
    printf '%s\n' "$f"
done < "$LIST" | LC_ALL=C sort -u > "$FILTERED"
mv "$FILTERED" "$LIST"

if ! grep -q '^src/partisim/' "$LIST"; then
    echo "Error: no se encontró el código del paquete en $ROOT/src/partisim" >&2
    exit 1
fi

ln -s "$ROOT" "$STAGE/TAREA"
sed 's,^,TAREA/,' "$LIST" > "$FILTERED"
tar -czf "$PARTIAL" -C "$STAGE" --no-recursion -T "$FILTERED"
mv "$PARTIAL" "$TARGET"

COUNT="$(wc -l < "$LIST" | tr -d ' ')"
SIZE="$(du -h "$TARGET" | cut -f1)"
echo "Archivos empaquetados (dentro de TAREA/):"
sed 's/^/  /' "$LIST"
echo
echo "Paquete creado: $TARGET ($COUNT archivos, $SIZE)"
echo "En cada máquina worker:"
echo "  tar -xzf $NAME && cd TAREA/ && ./start_worker.sh"
