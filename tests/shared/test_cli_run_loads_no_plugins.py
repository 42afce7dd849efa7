"""``vigil run`` (a service process) loads no service's CLI commands: the notify and classify command
modules cost ~5 MB of an ingest process's RSS (peak 139 -> 133 MB in bench_http_batch.py)."""

from __future__ import annotations

import subprocess
import sys

_PROBE = """
import sys
from vigil_shared import cli
sys.argv = ["vigil", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith("vigil_") and m.endswith(".cli") and m != "vigil_shared.cli"))
"""


def _plugins_loaded(*args: str) -> str:
    out = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120)
    return out.stdout.strip().splitlines()[-1]


def test_run_loads_no_service_commands() -> None:
    assert _plugins_loaded("run", "--help") == "[]"


def test_other_commands_still_have_the_services_commands() -> None:
    assert "vigil_notify.cli" in _plugins_loaded("--help")
