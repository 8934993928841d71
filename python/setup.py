# SPDX-License-Identifier: Apache-2.0
"""The extension shmbus._shmbus, linked against the installed shared
libshmbus as pkg-config (shmbus.pc) describes it; the package's version
is that library's. Set PKG_CONFIG_PATH for a libshmbus installed under
another prefix (its lib directory is then also the extension's rpath)."""
import glob
import os
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


def relocated():
    """The pkg-config option that points shmbus.pc's prefix at the tree it
    was found in, when that tree was installed elsewhere than configured
    (`cmake --install build --prefix DIR`: the file still names the
    configured prefix, /usr/local by default); else no option."""
    pcdir, prefix, libdir = (pkg_config("--variable=" + v)[0]
                             for v in ("pcfiledir", "prefix", "libdir"))
    rel = os.path.relpath(libdir, prefix)  # lib, or lib/x86_64-linux-gnu
    lib = os.path.dirname(os.path.realpath(pcdir))
    # A libdir outside the prefix, or a .pc file outside its libdir: as it says.
    if rel.startswith("..") or not lib.endswith(os.sep + rel):
        return []
    real = lib[:-len(rel) - 1]
    if os.path.realpath(real) == os.path.realpath(prefix):
        return []
    return ["--define-variable=prefix=" + real]


def flags(opts, prefix):
    return [o[len(prefix):] for o in opts if o.startswith(prefix)]


where = relocated()
cflags, libs = pkg_config("--cflags", *where), pkg_config("--libs", *where)
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
