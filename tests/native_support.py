"""Helpers for the native-build tests of classify and notify (tests/*/test_native.py): each runs the
package in a fresh interpreter, since a build is put in place when the package is first imported."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def can_compile() -> bool:
    """mypyc (a dev dependency) and a C compiler are both here."""
    return importlib.util.find_spec("mypyc") is not None and (shutil.which("cc") or shutil.which("gcc")) is not None


def python(code: str, env: dict[str, str], *args: str) -> str:
    """The standard output of ``python -c code args`` with ``env`` over this process's environment."""
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env={**os.environ, **env}, check=True, capture_output=True, text=True
    )
    return done.stdout


_BUILT: dict[tuple[str, str], Path] = {}
"""(package, source digest) -> a complete build made earlier in this test session."""


def build(package: str, env: dict[str, str]) -> None:
    """Build ``package`` into the directory ``env`` names (``*_NATIVE_DIR``). A build of the same
    source made earlier in this session is copied there instead of compiled again (~40 CPU-s each):
    each test still has its own build directory to rename or damage."""
    target = Path(next(v for k, v in env.items() if k.endswith("_NATIVE_DIR")))
    key = (package, digest(package, env))
    earlier = _BUILT.get(key)
    if earlier is not None and (earlier / "COMPLETE").exists():
        shutil.copytree(earlier, target / earlier.name)
        return
    python(f"from {package} import native; native.build()", env)
    made = target / key[1]
    if (made / "COMPLETE").exists():
        _BUILT[key] = made


def digest(package: str, env: dict[str, str]) -> str:
    return python(f"from {package} import native; print(native.source_digest())", env).strip()


def active(package: str, env: dict[str, str]) -> bool:
    return python(f"from {package} import native; print(int(native.active()))", env).strip() == "1"


def ext_suffix() -> str:
    """The file suffix of a C extension for this interpreter."""
    return python("import sysconfig; print(sysconfig.get_config_var('EXT_SUFFIX'))", {}).strip()


def compiled_and_pure(
    package: str, switch: str, tmp_path: Path, run: Callable[[dict[str, str]], tuple[bool, list[str]]]
) -> tuple[dict[str, str], Path, list[str], list[str]]:
    """Build ``package`` into ``tmp_path`` (``<switch>_DIR``), then ``run`` it with the build and with
    ``<switch>=0``; checks there is one complete build, used by the first run and not the second.
    Returns the environment using the build, the build's directory and both runs' output lines."""
    env = {f"{switch}_DIR": str(tmp_path), switch: "1"}
    build(package, env)
    builds = [p for p in tmp_path.iterdir() if (p / "COMPLETE").exists()]
    assert len(builds) == 1
    compiled, native_out = run(env)
    pure, pure_out = run({**env, switch: "0"})
    assert compiled
    assert not pure
    return env, builds[0], native_out, pure_out


def assert_used_only_under_its_digest(package: str, env: dict[str, str], build_dir: Path) -> None:
    """A build is used only under the digest of the source being imported: renamed to another
    digest it is not active, renamed back it is."""
    elsewhere = build_dir.with_name("0" * len(build_dir.name))
    build_dir.rename(elsewhere)
    assert not active(package, env)
    elsewhere.rename(build_dir)
    assert active(package, env)
