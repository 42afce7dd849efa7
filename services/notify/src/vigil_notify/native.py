"""An optional native build of notify's hot pure modules, used when one matches the source.

Matching (the subscription index and its predicate), rendering (the prepared messages filled in per
delivery), the notifier (the batch path: routing, planning and building each delivery's job,
taking in the outcomes), delivered (each sent job's event, its stream data and outcome) and delivery
(the ledger, the deliverer's batch path, the routing state's scripts, the content fingerprint) are pure
Python typed strictly enough for mypyc to compile to C extensions (:data:`NATIVE_MODULES`): the
same code, without the interpreter's dispatch, costs notify less CPU per alert with identical
matches, messages and jobs (``tests/notify/test_native.py`` compares both
over generated alerts, and runs the notifier's tests with the build). :func:`build` (``vigil
notify-compile``) compiles them into the cache directory, under a name made of a digest of their
source, of the modules they are typed against (the rest of the package and the shared event models:
a compiled module checks the types of what it reads from them) and of the interpreter;
:func:`activate`, run when the package is imported, puts such a build in front of the package's own
modules only when its digest is the one of the source being imported. Without a matching build, or
with ``VIGIL_NOTIFY_NATIVE=0``, the pure modules run as always. The mechanism is
:class:`vigil_shared.native.NativeBuild`.
"""

from __future__ import annotations

from pathlib import Path

from vigil_shared.native import NativeBuild

NATIVE_MODULES = ("matching", "rendering", "notifier", "delivered", "delivery")
"""The modules compiled. :mod:`vigil_notify.filled` stays interpreted on purpose: it fills the
instance dict of an interpreted frozen dataclass, which compiled code cannot. The notifier's and
delivery's classes (``Deliverer``, ``IdempotencyLedger``, the routing state's) are then native
classes: no attribute of theirs can be added or monkeypatched (tests run the pure modules), and they
cannot be subclassed by interpreted code. ``delivery`` compiled: ``bench_notify.py -n 3000
--callgrind`` 1,645.2M -> 1,603.3M instructions (-2.5%; tenth session)."""

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


# The package's names for its build (vigil_shared.native.NativeBuild documents each): the digest
# of the source, where builds live (``$VIGIL_NOTIFY_NATIVE_DIR``, else the Vigil cache directory), the
# build directory for a digest, compiling, activating at import, and whether the build is in use.
source_digest = _BUILD.source_digest
cache_root = _BUILD.cache_root
build_dir = _BUILD.build_dir
build = _BUILD.build
activate = _BUILD.activate
active = _BUILD.active
