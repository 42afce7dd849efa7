"""The optional native build (vigil_classify.native): used only when it matches the source, and
then classifying byte for byte as the pure modules."""

from __future__ import annotations

import json
from pathlib import Path

import native_support
import pytest

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PACKAGE = "vigil_classify"

# Classifies the fixture corpus (with its issuers and a few others) and generated alerts; prints
# whether the compiled modules were the ones used, then one JSON payload per line.
_CLASSIFY_ALL = r"""
import json, sys
from pathlib import Path
from vigil_classify import native
from vigil_classify.benchmark import make_alerts
from vigil_classify.engine import Classifier
c = Classifier()
print(json.dumps(native.active()))
inputs = []
for path in sorted(Path(sys.argv[1]).glob("*_alerts.jsonl")):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            item = json.loads(line)
            for issuer in (item.get("issuer"), None, "U.S. Embassy Moscow", "Consulate General Istanbul"):
                inputs.append((str(item.get("title", "")), str(item.get("text", "")), issuer))
inputs += [(title, text, "Benchmark Desk") for title, text in make_alerts(400, seed=31)]
for i, (title, text, issuer) in enumerate(inputs):
    payload = c.classify_payload(text, title=title, issuer=issuer, alert_id=str(i))
    print(json.dumps(payload, ensure_ascii=False))
"""


def _run(env: dict[str, str]) -> tuple[bool, list[str]]:
    out = native_support.python(_CLASSIFY_ALL, env, str(FIXTURES)).splitlines()
    return json.loads(out[0]), out[1:]


@pytest.mark.slow  # compiles five modules (~20 CPU-s)
@pytest.mark.skipif(not native_support.can_compile(), reason="needs mypyc and a C compiler")
def test_native_build_classifies_byte_for_byte_as_the_pure_modules(tmp_path: Path) -> None:
    env, build, native_out, pure_out = native_support.compiled_and_pure(
        PACKAGE, "VIGIL_CLASSIFY_NATIVE", tmp_path, _run
    )
    assert len(native_out) > 600
    assert native_out == pure_out
    native_support.assert_used_only_under_its_digest(PACKAGE, env, build)


def test_a_damaged_build_falls_back_to_the_pure_modules(tmp_path: Path) -> None:
    env = {"VIGIL_CLASSIFY_NATIVE_DIR": str(tmp_path), "VIGIL_CLASSIFY_NATIVE": "1"}
    build = tmp_path / native_support.digest(PACKAGE, env)
    (build / "vigil_classify").mkdir(parents=True)
    (build / "vigil_classify" / f"textnorm{native_support.ext_suffix()}").write_bytes(b"not a shared object")
    (build / "COMPLETE").write_text("x\n")
    assert not native_support.active(PACKAGE, env)
    # and the pure modules still classify
    _compiled, out = _run(env)
    assert len(out) > 600
