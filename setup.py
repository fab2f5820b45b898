"""Build the Cython engine; everything else lives in pyproject.toml.

OpenMP: used when the compiler can build and link a small OpenMP program;
otherwise (or with PARTISIM_OPENMP=0 in the environment) the engine is built
without it and runs on one thread, with the same results.
"""

import os
import shutil
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

_OPENMP_PROBE = """
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += 1;
    return n > 0 ? 0 : 1;
}
"""


def _openmp_flags(compiler) -> list[str]:
    return ["/openmp"] if compiler.compiler_type == "msvc" else ["-fopenmp"]


def _compiler_has_openmp(compiler) -> bool:
    """Compile and link the probe with the compiler setuptools will use."""
    flags = _openmp_flags(compiler)
    tmp = tempfile.mkdtemp(prefix="partisim-openmp-")
    try:
        source = os.path.join(tmp, "probe.c")
        with open(source, "w") as fh:
            fh.write(_OPENMP_PROBE)
        objects = compiler.compile([source], output_dir=tmp, extra_postargs=flags)
        compiler.link_executable(objects, "probe", output_dir=tmp, extra_postargs=flags)
        return True
    except (CompileError, LinkError, OSError):  # no OpenMP here (or no linker): build without it
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class BuildExt(build_ext):
    def build_extensions(self) -> None:
        wanted = os.environ.get("PARTISIM_OPENMP", "1") != "0"
        use = wanted and _compiler_has_openmp(self.compiler)
        print(f"partisim: OpenMP {'activado' if use else 'desactivado'} en el motor cython")
        if use:
            flags = _openmp_flags(self.compiler)
            for ext in self.extensions:
                ext.extra_compile_args = [*ext.extra_compile_args, *flags]
                ext.extra_link_args = [*ext.extra_link_args, *flags]
        for ext in self.extensions:
            # the flags, as this build used them, readable from the engine (`build_info`)
            shown = " ".join([*ext.extra_compile_args]).replace("\\", "/").replace('"', "'")
            ext.define_macros = [*ext.define_macros, ("PARTISIM_CFLAGS", f'"{shown}"')]
        super().build_extensions()


# -ffp-contract=off: no fused multiply-add, so the compiled engine stays
# bit-identical to the Python and NumPy engines. Never -ffast-math.
extensions = [
    Extension(
        "partisim.sim.engines._cython",
        ["src/partisim/sim/engines/_cython.pyx"],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
