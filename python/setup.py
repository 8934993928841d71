# SPDX-License-Identifier: Apache-2.0
"""The extension shmbus._shmbus, linked against the installed shared
libshmbus as pkg-config (shmbus.pc) describes it; the package's version
is that library's. Set PKG_CONFIG_PATH for a libshmbus installed under
another prefix (its lib directory is then also the extension's rpath)."""
import glob
import shlex
import subprocess

from setuptools import Extension, setup


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args, "shmbus"], check=True, text=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit("shmbus: pkg-config finds no libshmbus (shmbus.pc): install "
                         "libshmbus, or point PKG_CONFIG_PATH at its lib/pkgconfig") from e
    return shlex.split(out)


def flags(opts, prefix):
    return [o[len(prefix):] for o in opts if o.startswith(prefix)]


cflags, libs = pkg_config("--cflags"), pkg_config("--libs")
libdirs = flags(libs, "-L")
ext = Extension(
    "shmbus._shmbus",
    sources=sorted(glob.glob("src/*.c")),
    depends=["src/pyshmbus.h"],
    include_dirs=flags(cflags, "-I"),
    library_dirs=libdirs,
    libraries=flags(libs, "-l"),
    runtime_library_dirs=libdirs,
    define_macros=[("_GNU_SOURCE", None)],
    extra_compile_args=["-std=c11"] + [o for o in cflags if not o.startswith("-I")],
)
setup(version=pkg_config("--modversion")[0], ext_modules=[ext])
