"""An optional native build of notify's hot pure modules, used when one matches the source.

Matching (the subscription index and its predicate) and rendering (the prepared messages filled in
per delivery) are pure Python typed strictly enough for mypyc to compile to C extensions
(:data:`NATIVE_MODULES`): the same code, without the interpreter's dispatch, costs notify about
10 % less CPU per alert with identical matches and messages (``tests/notify/test_native.py``
compares both over generated alerts). :func:`build` (``vigil notify-compile``) compiles them into
the cache directory, under a name made of a digest of their source, of the modules they are typed
against (the rest of the package and the shared event models: a compiled module checks the types of
what it reads from them) and of the interpreter; :func:`activate`, run when the package is imported,
puts such a build in front of the package's own modules only when its digest is the one of the
source being imported. Without a matching build, or with ``VIGIL_NOTIFY_NATIVE=0``, the pure
modules run as always. The mechanism is :class:`vigil_shared.native.NativeBuild`.
"""

from __future__ import annotations

from pathlib import Path

from vigil_shared.native import NativeBuild

NATIVE_MODULES = ("matching", "rendering")
"""The modules compiled. :mod:`vigil_notify.filled` stays interpreted on purpose: it fills the
instance dict of an interpreted frozen dataclass, which compiled code cannot."""

_SOURCE_DIR = Path(__file__).resolve().parent

_BUILD = NativeBuild(
    package="vigil_notify",
    source_dir=_SOURCE_DIR,
    modules=NATIVE_MODULES,
    # the rest of the package, for the types the compiled modules are checked against (not compiled)
    support=tuple(
        sorted(
            str(p.relative_to(_SOURCE_DIR))
            for p in _SOURCE_DIR.rglob("*.py")
            if p.stem not in NATIVE_MODULES or p.parent != _SOURCE_DIR
        )
    ),
    env_switch="VIGIL_NOTIFY_NATIVE",
    env_dir="VIGIL_NOTIFY_NATIVE_DIR",
    cache_name="notify-native",
    probes=NATIVE_MODULES,
    hash_support=True,
    depends=("vigil_shared.events",),
)


def source_digest() -> str:
    """Digest of what a build depends on (see the module's docstring)."""
    return _BUILD.source_digest()


def cache_root() -> Path:
    """Where builds live: ``$VIGIL_NOTIFY_NATIVE_DIR`` if set, else ``notify-native`` in the Vigil
    cache directory (``$VIGIL_CACHE_DIR/vigil``, else ``$XDG_CACHE_HOME`` or ``~/.cache``)."""
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
    ``VIGIL_NOTIFY_NATIVE=0``, or on any error."""
    return _BUILD.activate(package_path)


def active() -> bool:
    """Whether the compiled modules are the ones imported (checked on :mod:`vigil_notify.rendering`)."""
    return _BUILD.active()
