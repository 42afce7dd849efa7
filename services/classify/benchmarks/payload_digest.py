"""A digest of the classifier's payloads on the bench texts, to check that a speed-up changed nothing.

    uv run --no-sync python services/classify/benchmarks/payload_digest.py [-n 20000] [--both]

Classifies ``vigil_shared.bench.make_texts(n)`` as the service does (title, issuer, alert id of
``vigil_shared.bench._alert``) and prints whether the compiled build ran, n and the MD5 of the
payloads' JSON lines. ``--both`` runs it twice, in fresh processes, with the compiled modules (when
a build matches the source: ``make native``) and with the pure ones (``VIGIL_CLASSIFY_NATIVE=0``), and
fails unless both digests are equal. Compare the digest before and after a change (session 8: the
20,000 texts gave 44e4b108a363810cda4c8240c5a90496 before and after).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys


def digest(n: int) -> tuple[bool, str]:
    from vigil_classify import native
    from vigil_classify.engine import Classifier
    from vigil_shared.bench import _alert, make_texts

    classifier = Classifier()
    h = hashlib.md5()
    for i, (title, text) in enumerate(make_texts(n)):
        alert = _alert(i, title, text)
        payload = classifier.classify_payload(
            alert.text, title=alert.title, issuer=alert.issuer, alert_id=alert.alert_id
        )
        h.update(json.dumps(payload, ensure_ascii=False).encode())
        h.update(b"\n")
    return native.active(), h.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", type=int, default=20_000, help="bench texts (default 20,000)")
    parser.add_argument("--both", action="store_true", help="compiled and pure, in fresh processes")
    args = parser.parse_args()
    if not args.both:
        active, md5 = digest(args.n)
        print(f"native={active} n={args.n} md5={md5}")
        return
    outs = []
    for switch in ("1", "0"):
        env = {**os.environ, "VIGIL_CLASSIFY_NATIVE": switch}
        done = subprocess.run(
            [sys.executable, __file__, "-n", str(args.n)], env=env, check=True, capture_output=True, text=True
        )
        outs.append(done.stdout.strip())
        print(outs[-1])
    if outs[0].split()[-1] != outs[1].split()[-1]:
        sys.exit("the compiled and the pure modules gave different payloads")


if __name__ == "__main__":
    main()
