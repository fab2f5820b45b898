@echo off
rem Inicia un worker de partisim en Windows (para pruebas locales).
rem Igual que start_worker.sh: verifica Python, crea .venv, instala el paquete si
rem hace falta, detecta IP e id, verifica Docker (construye la imagen si falta) e
rem inicia el servicio. Se puede ejecutar varias veces: lo hecho no se repite.
setlocal EnableExtensions EnableDelayedExpansion

cd /d "%~dp0"

if "%PARTISIM_DOCKER_IMAGE%"=="" (set "IMAGE=particle-simulation:latest") else (set "IMAGE=%PARTISIM_DOCKER_IMAGE%")
if "%PYTHON%"=="" (set "PY=python") else (set "PY=%PYTHON%")
if "%PARTISIM_VENV%"=="" (set "VENV=%~dp0.venv") else (set "VENV=%PARTISIM_VENV%")
if "%PARTISIM_HOST%"=="" (set "HOST=0.0.0.0") else (set "HOST=%PARTISIM_HOST%")
if "%PARTISIM_PORT%"=="" (set "PORT=8080") else (set "PORT=%PARTISIM_PORT%")
set "WID=%WORKER_ID%"
set "CONFIG="
set "RUNNER="
set "INSTALL=1"
set "BUILD=1"
set "CHECK_ONLY=0"
set "EXTRA="

:parse
if "%~1"=="" goto parsed
if /i "%~1"=="-h" goto usage
if /i "%~1"=="--help" goto usage
if /i "%~1"=="--host" (set "HOST=%~2" & shift & shift & goto parse)
if /i "%~1"=="--port" (set "PORT=%~2" & shift & shift & goto parse)
if /i "%~1"=="--worker-id" (set "WID=%~2" & shift & shift & goto parse)
if /i "%~1"=="--config" (set "CONFIG=%~2" & shift & shift & goto parse)
if /i "%~1"=="--runner" (set "RUNNER=%~2" & shift & shift & goto parse)
if /i "%~1"=="--venv" (set "VENV=%~2" & shift & shift & goto parse)
if /i "%~1"=="--python" (set "PY=%~2" & shift & shift & goto parse)
if /i "%~1"=="--no-install" (set "INSTALL=0" & shift & goto parse)
if /i "%~1"=="--no-build" (set "BUILD=0" & shift & goto parse)
if /i "%~1"=="--check" (set "CHECK_ONLY=1" & shift & goto parse)
if "%~1"=="--" (shift & goto rest)
echo [start_worker] ERROR: opcion desconocida: %~1 (vea start_worker.bat --help) 1>&2
exit /b 2

:rest
if "%~1"=="" goto parsed
set "EXTRA=!EXTRA! %1"
shift
goto rest

:usage
echo Uso: start_worker.bat [opciones] [-- opciones extra de 'partisim worker']
echo.
echo Prepara esta maquina como worker de partisim y lo inicia:
echo   1. verifica Python (3.10 o superior) y crea un entorno virtual (.venv);
echo   2. instala partisim y sus dependencias (requirements_worker.txt) si hace falta;
echo   3. detecta la IP y el id del worker (segun config_workers.json);
echo   4. verifica Docker y construye la imagen particle-simulation:latest si falta;
echo   5. inicia el servicio worker (Ctrl-C lo detiene).
echo.
echo Opciones:
echo   --host DIRECCION    direccion en la que escuchar (por defecto 0.0.0.0)
echo   --port PUERTO       puerto (por defecto 8080)
echo   --worker-id ID      id del worker (por defecto: segun la IP)
echo   --config RUTA       archivo de workers (por defecto config_workers.json)
echo   --runner TIPO       auto, process o docker (por defecto auto)
echo   --venv CARPETA      entorno virtual a usar o crear (por defecto .venv)
echo   --python EJECUTABLE interprete para crear el entorno (por defecto python)
echo   --no-install        no instala nada: usa el entorno tal como esta
echo   --no-build          no construye la imagen Docker aunque falte
echo   --check             solo verifica e instala; no inicia el servicio
echo   -h, --help          muestra esta ayuda
exit /b 0

:parsed
if not "%RUNNER%"=="" (
    if /i not "%RUNNER%"=="auto" if /i not "%RUNNER%"=="process" if /i not "%RUNNER%"=="docker" (
        echo [start_worker] ERROR: --runner debe ser auto, process o docker 1>&2
        exit /b 2
    )
)

rem 1. Python y entorno virtual
set "VPY=%VENV%\Scripts\python.exe"
if not exist "%VPY%" (
    if "%INSTALL%"=="0" (
        echo [start_worker] ERROR: no existe el entorno virtual %VENV% 1>&2
        exit /b 1
    )
    where %PY% >nul 2>nul || (
        echo [start_worker] ERROR: no se encontro %PY%; instale Python 3.10 o superior desde python.org 1>&2
        exit /b 1
    )
    %PY% -c "import sys; sys.exit(sys.version_info < (3, 10))" || (
        echo [start_worker] ERROR: se necesita Python 3.10 o superior 1>&2
        exit /b 1
    )
    echo [start_worker] Creando el entorno virtual en %VENV%
    %PY% -m venv "%VENV%" || (
        echo [start_worker] ERROR: no se pudo crear el entorno virtual 1>&2
        exit /b 1
    )
)
for /f "delims=" %%v in ('"%VPY%" -V 2^>^&1') do echo [start_worker] Python: %%v en %VENV%

rem 2. Instalacion (solo si el codigo cambio)
set "STAMP=%VENV%\.partisim-worker-install"
if "%INSTALL%"=="1" (
    set "WANT="
    for /f "delims=" %%h in ('"%VPY%" -c "import hashlib,pathlib;h=hashlib.sha256();fs=[pathlib.Path(p) for p in ('pyproject.toml','setup.py','requirements_worker.txt') if pathlib.Path(p).exists()]+sorted(p for p in pathlib.Path('src').rglob('*') if p.suffix in ('.py','.pyx','.pxd'));[h.update(str(f).replace(chr(92),'/').encode()+f.read_bytes()) for f in fs];print(h.hexdigest())"') do set "WANT=%%h"
    set "HAVE="
    if exist "%STAMP%" set /p HAVE=<"%STAMP%"
    "%VPY%" -c "import partisim.worker" >nul 2>nul
    if "!WANT!"=="!HAVE!" if not errorlevel 1 (
        echo [start_worker] Paquete partisim ya instalado y al dia
        goto installed
    )
    echo [start_worker] Instalando partisim y sus dependencias ^(requirements_worker.txt^)...
    "%VPY%" -m pip install --disable-pip-version-check -q -r requirements_worker.txt || (
        echo [start_worker] ERROR: fallo la instalacion; revise los mensajes de pip 1>&2
        exit /b 1
    )
    > "%STAMP%" echo !WANT!
    echo [start_worker] Instalacion completada
)
:installed
"%VPY%" -c "import partisim.worker" >nul 2>nul || (
    echo [start_worker] ERROR: partisim no esta instalado en %VENV% ^(ejecute sin --no-install^) 1>&2
    exit /b 1
)

rem 3. IP e id del worker
set "ARGS=--host %HOST% --port %PORT%"
if not "%WID%"=="" set "ARGS=%ARGS% --worker-id %WID%"
if not "%CONFIG%"=="" set "ARGS=%ARGS% --config "%CONFIG%""
if not "%RUNNER%"=="" set "ARGS=%ARGS% --runner %RUNNER%"
set "WHO="
for /f "delims=" %%w in ('"%VPY%" -m partisim worker %ARGS% --whoami') do set "WHO=%%w"
if "%WHO%"=="" exit /b 2
for /f "tokens=1,2" %%a in ("%WHO%") do (
    echo [start_worker] IP detectada: %%b
    echo [start_worker] Worker ID: %%a
    set "DETECTED_ID=%%a"
)

rem 4. Docker e imagen
if /i "%RUNNER%"=="process" (
    echo [start_worker] Runner process: no se necesita Docker
    goto docker_done
)
where docker >nul 2>nul || (
    echo [start_worker] AVISO: Docker no esta instalado: se usaran procesos locales
    goto docker_done
)
docker info >nul 2>nul || (
    echo [start_worker] AVISO: Docker no responde ^(Docker Desktop detenido?^): se usaran procesos locales
    goto docker_done
)
docker image inspect %IMAGE% >nul 2>nul && (
    echo [start_worker] Docker disponible; imagen %IMAGE% presente
    goto docker_done
)
if "%BUILD%"=="0" (
    echo [start_worker] AVISO: falta la imagen %IMAGE% y se indico --no-build
    goto docker_done
)
if not exist Dockerfile (
    echo [start_worker] AVISO: falta la imagen %IMAGE% y no hay Dockerfile
    goto docker_done
)
echo [start_worker] Construyendo la imagen %IMAGE% ^(la primera vez tarda unos minutos^)...
docker build -t %IMAGE% . && (
    echo [start_worker] Imagen %IMAGE% construida
) || (
    echo [start_worker] AVISO: no se pudo construir la imagen: se usaran procesos locales
)
:docker_done

if "%CHECK_ONLY%"=="1" (
    echo [start_worker] Verificacion completa ^(--check^): el servicio no se inicia
    exit /b 0
)

rem 5. Servicio
echo [start_worker] Iniciando el worker %DETECTED_ID% en %HOST%:%PORT% ^(Ctrl-C para detenerlo^)
"%VPY%" -m partisim worker %ARGS% %EXTRA%
exit /b %ERRORLEVEL%
