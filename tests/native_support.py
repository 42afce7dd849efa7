"""Helpers for the native-build tests of classify and notify (tests/*/test_native.py): each runs the
package in a fresh interpreter, since a build is put in place when the package is first imported."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys


def can_compile() -> bool:
    """mypyc (a dev dependency) and a C compiler are both here."""
    return importlib.util.find_spec("mypyc") is not None and (shutil.which("cc") or shutil.which("gcc")) is not None


def python(code: str, env: dict[str, str], *args: str) -> str:
    """The standard output of ``python -c code args`` with ``env`` over this process's environment."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env={**os.environ, **env}, check=True, capture_output=True, text=True
    )
    return done.stdout


def build(package: str, env: dict[str, str]) -> None:
    python(f"from {package} import native; native.build()", env)


def digest(package: str, env: dict[str, str]) -> str:
    return python(f"from {package} import native; print(native.source_digest())", env).strip()


def active(package: str, env: dict[str, str]) -> bool:
    return python(f"from {package} import native; print(int(native.active()))", env).strip() == "1"


def ext_suffix() -> str:
    """The file suffix of a C extension for this interpreter."""
    return python("import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))", {}).strip()
