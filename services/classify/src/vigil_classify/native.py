"""An optional native build of the classifier's hot modules, used when one matches the source.

The classifier is pure Python, typed strictly enough for mypyc to compile its hot modules
(:data:`NATIVE_MODULES`) to C extensions: the same code, without the interpreter's dispatch, costs
about 40 % less CPU per alert with byte-identical results (``tests/classify/test_native.py``
compares both on the fixture corpus and generated alerts). :func:`build` (``vigil classify-compile``)
compiles them into the cache directory, under a name made of a digest of their source and the
interpreter; :func:`activate`, run when the package is imported, puts
such a build in front of the package's own modules only when its digest is the one of the source
being imported, so an edited module is never shadowed by a stale build: without a matching build,
or with ``VIGIL_CLASSIFY_NATIVE=0``, the pure modules run as always.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import sysconfig
from pathlib import Path

NATIVE_MODULES = ("textnorm", "severity", "taxonomy", "geoparse", "engine")
"""The modules compiled (they import nothing from the package besides each other, the gazetteer and
the taxonomy data, which stay interpreted)."""

_PACKAGE = "vigil_classify"
_COMPLETE = "COMPLETE"
"""Marker file written last by :func:`build`: a directory without it is a build that did not finish."""


def _source_dir() -> Path:
    return Path(__file__).resolve().parent


def source_digest() -> str:
    """Digest of what a build depends on: each compiled module's source and the interpreter (its
    cache tag and extension ABI). A build carries mypyc's runtime library with it, so the compiler's
    version is not part of it."""
    h = hashlib.sha256()
    h.update(sys.implementation.cache_tag.encode())
    h.update(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
    src = _source_dir()
    for name in NATIVE_MODULES:
        h.update(name.encode())
        h.update((src / f"{name}.py").read_bytes())
    return h.hexdigest()[:20]


def cache_root() -> Path:
    """Where builds live: ``$VIGIL_CLASSIFY_NATIVE_DIR`` if set, else ``classify-native`` in the
    gazetteer's cache directory (``$VIGIL_CACHE_DIR/vigil``, else ``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    explicit = os.environ.get("VIGIL_CLASSIFY_NATIVE_DIR")
    if explicit:
        return Path(explicit)
    root = os.environ.get("VIGIL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    return (Path(root) if root else Path.home() / ".cache") / "vigil" / "classify-native"


def build_dir(digest: str | None = None) -> Path:
    """The directory of the build for the current source (it may not exist)."""
    return cache_root() / (digest or source_digest())


def build() -> Path:
    """Compile :data:`NATIVE_MODULES` with mypyc into :func:`build_dir` (tens of seconds; needs mypy
    and a C compiler) and return that directory. An existing complete build is kept as it is."""
    import shutil
    import subprocess
    import tempfile

    target = build_dir()
    if (target / _COMPLETE).exists():
        return target
    src = _source_dir()
    with tempfile.TemporaryDirectory(prefix="vigil-native-") as tmp:
        work = Path(tmp)
        pkg = work / _PACKAGE
        pkg.mkdir()
        (pkg / "__init__.py").write_text("")
        for name in NATIVE_MODULES:
            shutil.copy2(src / f"{name}.py", pkg / f"{name}.py")
        # the interpreted modules they import, so that mypy sees their types (not compiled)
        for name in ("gazetteer", "taxonomy_data"):
            shutil.copy2(src / f"{name}.py", pkg / f"{name}.py")
        files = [f"{_PACKAGE}/{name}.py" for name in NATIVE_MODULES]
        done = subprocess.run(
            [sys.executable, "-m", "mypyc", "--ignore-missing-imports", *files],
            cwd=work,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"mypyc failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
        suffix = str(sysconfig.get_config_var("EXT_SUFFIX"))
        staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=_mkdir(target.parent)))
        (staging / _PACKAGE).mkdir()
        for name in NATIVE_MODULES:
            shutil.copy2(pkg / f"{name}{suffix}", staging / _PACKAGE / f"{name}{suffix}")
        for shared in work.glob(f"*__mypyc{suffix}"):  # the runtime library the modules share
            shutil.copy2(shared, staging / shared.name)
        (staging / _COMPLETE).write_text(source_digest() + "\n")
        try:
            staging.rename(target)
        except OSError:  # another process finished the same build first
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def activate(package_path: list[str]) -> bool:
    """Put the build for the current source in front of the package's modules (``package_path`` is
    the package's ``__path__``); ``False`` (nothing changed) without such a build, when
    ``VIGIL_CLASSIFY_NATIVE=0``, or on any error."""
    if os.environ.get("VIGIL_CLASSIFY_NATIVE", "1") == "0":
        return False
    try:
        target = build_dir()
        if not (target / _COMPLETE).exists():
            return False
        native_pkg = str(target / _PACKAGE)
        if native_pkg not in package_path:
            package_path.insert(0, native_pkg)
        if str(target) not in sys.path:
            sys.path.append(str(target))  # the shared runtime library's top-level module
        # a build that cannot be loaded (a damaged file) must not take the package down with it
        importlib.import_module(f"{_PACKAGE}.textnorm")
        return True
    except Exception:
        _deactivate(package_path)
        return False


def _deactivate(package_path: list[str]) -> None:
    root = str(cache_root())
    package_path[:] = [p for p in package_path if not p.startswith(root)]
    sys.path[:] = [p for p in sys.path if not p.startswith(root)]
    sys.modules.pop(f"{_PACKAGE}.textnorm", None)


def active() -> bool:
    """Whether the compiled modules are the ones imported (checked on :mod:`vigil_classify.engine`)."""
    from vigil_classify import engine

    return not str(engine.__file__).endswith(".py")
