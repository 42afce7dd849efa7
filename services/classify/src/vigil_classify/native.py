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

NATIVE_MODULES = ("textnorm", "severity", "taxonomy", "geoparse", "engine", "writer")
"""The modules compiled (they import nothing from the package besides each other, the gazetteer and
the taxonomy data, which stay interpreted; ``writer`` is the service's per-alert entry writer)."""

_BUILD = NativeBuild(
    package="vigil_classify",
    source_dir=Path(__file__).resolve().parent,
    modules=NATIVE_MODULES,
    support=("gazetteer.py", "taxonomy_data.py"),
    depends=("vigil_shared.events",),
    env_switch="VIGIL_CLASSIFY_NATIVE",
    env_dir="VIGIL_CLASSIFY_NATIVE_DIR",
    cache_name="classify-native",
    probes=("textnorm",),
)


# The package's names for its build (vigil_shared.native.NativeBuild documents each): the digest
# of the source, where builds live (``$VIGIL_CLASSIFY_NATIVE_DIR``, else the Vigil cache directory), the
# build directory for a digest, compiling, activating at import, and whether the build is in use.
source_digest = _BUILD.source_digest
cache_root = _BUILD.cache_root
build_dir = _BUILD.build_dir
build = _BUILD.build
activate = _BUILD.activate
active = _BUILD.active
