"""The images' build-time cache steps, run here as local processes (no Docker engine): the classify
image pickles the gazetteer while building, and the service then starts from that pickle without
rebuilding it, in a directory it cannot write to (as the image's unprivileged user)."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _warm_up_code(dockerfile: Path, variable: str) -> str:
    """The ``python -c "..."`` of the RUN step that sets ``variable`` (line continuations joined)."""
    text = dockerfile.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("RUN ") and f"{variable}=" in line:
            found = re.search(r'python -c\s+"([^"]+)"', line)
            assert found, f"no python -c in {line!r}"
            return found.group(1)
    raise AssertionError(f"{dockerfile} has no RUN step setting {variable}")


def test_classify_image_warm_up_builds_the_cache_the_service_then_only_reads(tmp_path: Path) -> None:
    dockerfile = ROOT / "services/classify/Dockerfile"
    assert "VIGIL_CACHE_DIR=/app/classify-cache" in dockerfile.read_text()  # set at run time too
    cache = tmp_path / "classify-cache"
    cache.mkdir()
    env = {**os.environ, "VIGIL_CACHE_DIR": str(cache)}
    subprocess.run([sys.executable, "-c", _warm_up_code(dockerfile, "VIGIL_CACHE_DIR")], env=env, check=True)
    pickles = sorted(p.name for p in (cache / "vigil").glob("gazetteer-*.pickle"))
    assert pickles, "the warm-up wrote no gazetteer pickle"

    # read-only, as for the image's user; building again would need the (here disabled) builder
    for path in (cache, cache / "vigil"):
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        check = (
            "import vigil_classify.gazetteer as g\n"
            "def refuse(*a, **k): raise SystemExit('the gazetteer was rebuilt: the cache missed')\n"
            "g.build = refuse\n"
            "from vigil_classify.engine import default_classifier\n"
            "r = default_classifier().classify('Threat to metro stations in Moscow, Russia')\n"
            "assert 'RU' in r.countries, r\n"
        )
        done = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert sorted(p.name for p in (cache / "vigil").glob("*")) == pickles
    finally:
        for path in (cache, cache / "vigil"):
            path.chmod(stat.S_IRWXU)


@pytest.mark.parametrize("service", ["classify", "notify"])
def test_image_compiles_the_hot_modules_with_the_locked_mypy_and_drops_the_compiler(service: str) -> None:
    """The image's compiled build (classify's and notify's): made by ``vigil <service>-compile`` into
    the cache directory the service reads at run time (set in the final image too), with the mypy
    version the lock pins, and the compiler taken out of the venv again (the final ``uv sync``)
    before the venv is copied into the final image."""
    text = (ROOT / f"services/{service}/Dockerfile").read_text().replace("\\\n", " ")
    (step,) = [line for line in text.splitlines() if line.startswith("RUN ") and f"{service}-compile" in line]
    assert f"VIGIL_CACHE_DIR=/app/{service}-cache" in step
    lock = (ROOT / "uv.lock").read_text()
    locked = re.search(r'name = "mypy"\nversion = "([^"]+)"', lock)
    assert locked, "mypy is not in uv.lock"
    assert f'"mypy=={locked.group(1)}"' in step, "the Dockerfile's mypy pin differs from uv.lock's"
    # the final sync (which removes mypy again) comes after the compile, and the build is checked
    assert step.index(f"{service}-compile") < step.rindex("uv sync --frozen --no-dev")
    assert step.rstrip().endswith(f"{service}-native/*/COMPLETE")
    assert f"COPY --from=build --chown=root:root /app/{service}-cache /app/{service}-cache" in text
    final = text[text.rindex("FROM ") :]
    assert re.search(rf"^ENV .*VIGIL_CACHE_DIR=/app/{service}-cache", final, re.M), "the service would not find it"
