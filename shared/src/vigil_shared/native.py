"""Optional mypyc builds of a service's hot pure modules, used only when one matches the source.

Several services (classify, notify) have pure-Python modules typed strictly enough for mypyc to
compile to C extensions: the same code without the interpreter's dispatch, with the same results.
A :class:`NativeBuild` describes one package's build: :meth:`~NativeBuild.build` compiles the
modules into a cache directory named by a digest of their source (and of the modules they are typed
against) and the interpreter; :meth:`~NativeBuild.activate`, run when the package is imported, puts
such a build in front of the package's own modules only when its digest is the one of the source
being imported, so an edited module is never shadowed by a stale build. Without a matching build,
with ``<ENV>=0``, or when the build cannot be loaded, the pure modules run as always. This module
holds what does not depend on the package; each package keeps its own thin ``native`` module.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

COMPLETE = "COMPLETE"
"""Marker file written last by :meth:`NativeBuild.build`: a directory without it did not finish."""


@dataclass(frozen=True)
class NativeBuild:
    """The compiled build of one package's hot modules."""

    package: str
    """The package's import name (``vigil_classify``)."""
    source_dir: Path
    """The package's source directory (where ``<module>.py`` lives)."""
    modules: tuple[str, ...]
    """The modules compiled (top-level modules of the package)."""
    support: tuple[str, ...]
    """Source files (relative to :attr:`source_dir`) the compiled modules import and are typed
    against: copied next to them so that mypy sees their types, never compiled."""
    env_switch: str
    """``<env_switch>=0`` keeps the pure modules."""
    env_dir: str
    """``$<env_dir>`` overrides :meth:`cache_root`."""
    cache_name: str
    """The directory under the Vigil cache directory (``classify-native``)."""
    probes: tuple[str, ...]
    """Modules imported by :meth:`activate` to check the build loads (a damaged file falls back)."""
    hash_support: bool = False
    """Whether :attr:`support` files (and :attr:`depends`) are part of the digest: a compiled module
    checks the types of what it reads from them, so an edit there could otherwise meet a stale build."""
    depends: tuple[str, ...] = ()
    """Other modules (import names, outside the package) whose source is part of the digest when
    :attr:`hash_support` is set."""

    def source_digest(self) -> str:
        """Digest of what a build depends on: each compiled module's source (and, with
        :attr:`hash_support`, its typed dependencies) and the interpreter (its cache tag and
        extension ABI). A build carries mypyc's runtime library with it, so the compiler's version
        is not part of it."""
        h = hashlib.sha256()
        h.update(sys.implementation.cache_tag.encode())
        h.update(str(sysconfig.get_config_var("EXT_SUFFIX")).encode())
        for name in self.modules:
            h.update(name.encode())
            h.update((self.source_dir / f"{name}.py").read_bytes())
        if self.hash_support:
            for rel in self.support:
                h.update(rel.encode())
                h.update((self.source_dir / rel).read_bytes())
            for mod in self.depends:
                spec = importlib.util.find_spec(mod)
                origin = spec.origin if spec is not None else None
                h.update(mod.encode())
                h.update(Path(origin).read_bytes() if origin else b"")
        return h.hexdigest()[:20]

    def cache_root(self) -> Path:
        """Where builds live: ``$<env_dir>`` if set, else :attr:`cache_name` in the Vigil cache
        directory (``$VIGIL_CACHE_DIR/vigil``, else ``$XDG_CACHE_HOME`` or ``~/.cache``)."""
        explicit = os.environ.get(self.env_dir)
        if explicit:
            return Path(explicit)
        root = os.environ.get("VIGIL_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
        return (Path(root) if root else Path.home() / ".cache") / "vigil" / self.cache_name

    def build_dir(self, digest: str | None = None) -> Path:
        """The directory of the build for the current source (it may not exist)."""
        return self.cache_root() / (digest or self.source_digest())

    def build(self) -> Path:
        """Compile :attr:`modules` with mypyc into :meth:`build_dir` (tens of seconds; needs mypy
        and a C compiler) and return that directory. An existing complete build is kept as it is."""
        import shutil
        import subprocess
        import tempfile

        target = self.build_dir()
        if (target / COMPLETE).exists():
            return target
        with tempfile.TemporaryDirectory(prefix="vigil-native-") as tmp:
            work = Path(tmp)
            pkg = work / self.package
            pkg.mkdir()
            (pkg / "__init__.py").write_text("")
            copied = [f"{name}.py" for name in self.modules] + list(self.support)
            for rel in copied:
                dest = pkg / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                if dest.parent != pkg and not (dest.parent / "__init__.py").exists():
                    (dest.parent / "__init__.py").write_text("")
                shutil.copy2(self.source_dir / rel, dest)
            files = [f"{self.package}/{name}.py" for name in self.modules]
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
            (staging / self.package).mkdir()
            for name in self.modules:
                shutil.copy2(pkg / f"{name}{suffix}", staging / self.package / f"{name}{suffix}")
            for shared in work.glob(f"*__mypyc{suffix}"):  # the runtime library the modules share
                shutil.copy2(shared, staging / shared.name)
            (staging / COMPLETE).write_text(self.source_digest() + "\n")
            try:
                staging.rename(target)
            except OSError:  # another process finished the same build first
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def activate(self, package_path: list[str]) -> bool:
        """Put the build for the current source in front of the package's modules (``package_path``
        is the package's ``__path__``); ``False`` (nothing changed) without such a build, when
        ``<env_switch>=0``, or on any error."""
        if os.environ.get(self.env_switch, "1") == "0":
            return False
        try:
            target = self.build_dir()
            if not (target / COMPLETE).exists():
                return False
            native_pkg = str(target / self.package)
            if native_pkg not in package_path:
                package_path.insert(0, native_pkg)
            if str(target) not in sys.path:
                sys.path.append(str(target))  # the shared runtime library's top-level module
            # a build that cannot be loaded (a damaged file) must not take the package down with it
            for name in self.probes:
                importlib.import_module(f"{self.package}.{name}")
            return True
        except Exception:
            self._deactivate(package_path)
            return False

    def _deactivate(self, package_path: list[str]) -> None:
        root = str(self.cache_root())
        package_path[:] = [p for p in package_path if not p.startswith(root)]
        sys.path[:] = [p for p in sys.path if not p.startswith(root)]
        for name in self.modules:
            sys.modules.pop(f"{self.package}.{name}", None)

    def active(self) -> bool:
        """Whether the compiled modules are the ones imported (checked on the last of
        :attr:`modules`)."""
        module = importlib.import_module(f"{self.package}.{self.modules[-1]}")
        return not str(module.__file__).endswith(".py")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
