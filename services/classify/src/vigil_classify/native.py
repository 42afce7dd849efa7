"""An optional native build of the classifier's hot modules, used when one matches the source.

The classifier is pure Python, typed strictly enough for mypyc to compile its hot modules
(:data:`NATIVE_MODULES`) to C extensions: the same code, without the interpreter's dispatch, costs
about 40 % less CPU per alert with byte-identical results (``tests/classify/test_native.py``
compares both on the fixture corpus and generated alerts). :func:`build` (``vigil classify-compile``)
compiles them into the cache directory, under a name made of a digest of their source and the
interpreter; :func:`activate`, run when the package is imported, puts
such a build in front of the package's own modules only when its digest is the one of the source
being imported, so an edited module is never shadowed by a stale build: without a matching build,
or with ``VIGIL_CLASSIFY_NATIVE=0``, the pure modules run as always. The mechanism is
:class:`vigil_shared.native.NativeBuild` (notify has one too); this module names the classifier's.
"""

from __future__ import annotations

from pathlib import Path

from vigil_shared.native import NativeBuild

NATIVE_MODULES = ("textnorm", "severity", "taxonomy", "geoparse", "engine")
"""The modules compiled (they import nothing from the package besides each other, the gazetteer and
the taxonomy data, which stay interpreted)."""

_BUILD = NativeBuild(
    package="vigil_classify",
    source_dir=Path(__file__).resolve().parent,
    modules=NATIVE_MODULES,
    support=("gazetteer.py", "taxonomy_data.py"),
    env_switch="VIGIL_CLASSIFY_NATIVE",
    env_dir="VIGIL_CLASSIFY_NATIVE_DIR",
    cache_name="classify-native",
    probes=("textnorm",),
)


def source_digest() -> str:
    """Digest of what a build depends on: each compiled module's source and the interpreter (its
    cache tag and extension ABI)."""
    return _BUILD.source_digest()


def cache_root() -> Path:
    """Where builds live: ``$VIGIL_CLASSIFY_NATIVE_DIR`` if set, else ``classify-native`` in the
    gazetteer's cache directory (``$VIGIL_CACHE_DIR/vigil``, else ``$XDG_CACHE_HOME`` or ``~/.cache``)."""
    return _BUILD.cache_root()


def build_dir(digest: str | None = None) -> Path:
    """The directory of the build for the current source (it may not exist)."""
    return _BUILD.build_dir(digest)


def build() -> Path:
    """Compile :data:`NATIVE_MODULES` with mypyc into :func:`build_dir` (tens of seconds; needs mypy
    and a C compiler) and return that directory. An existing complete build is kept as it is."""
    return _BUILD.build()


def activate(package_path: list[str]) -> bool:
    """Put the build for the current source in front of the package's modules (``package_path`` is
    the package's ``__path__``); ``False`` (nothing changed) without such a build, when
    ``VIGIL_CLASSIFY_NATIVE=0``, or on any error."""
    return _BUILD.activate(package_path)


def active() -> bool:
    """Whether the compiled modules are the ones imported (checked on :mod:`vigil_classify.engine`)."""
    return _BUILD.active()
