"""Secondary build for `pip install .`; the Makefile is the primary one.
Both compile the same src/base/*.c and src/py/*.c, so they cannot drift."""
from glob import glob

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "multigil._core",
            sorted(glob("src/base/*.c")) + sorted(glob("src/py/*.c")),
            include_dirs=["src/base", "src/py"],
            extra_compile_args=["-std=gnu11", "-fvisibility=hidden",
                                "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ],
)
