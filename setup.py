"""Build the Cython engine; everything else lives in pyproject.toml."""
import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

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

setup(ext_modules=cythonize(extensions, language_level=3, compiler_directives={
    "boundscheck": False, "wraparound": False, "cdivision": True, "initializedcheck": False,
}))
