"""docker-compose.yml, checked without a Docker engine: its structure, and each service's command run
as a local process with the compose environment against a real Redis."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from vigil_shared.demo import wait_ready
from vigil_shared.embedded_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
APP_SERVICES = [n for n, s in COMPOSE["services"].items() if "build" in s]


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR:-default}`` / ``${VAR}`` substitution."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3) or ""
        return env.get(name) or default

    return re.sub(r"\$\{([A-Z0-9_]+)(:?-([^}]*))?\}", sub, value)


def test_compose_has_redis_with_aof_and_the_three_services() -> None:
    services = COMPOSE["services"]
    assert {"redis", "ingest", "classify", "notify"} <= set(services)
    assert "--appendonly" in services["redis"]["command"]
    assert services["redis"]["command"][services["redis"]["command"].index("--appendonly") + 1] == "yes"
    assert services["ingest"]["ports"], "ingest's HTTP port must be published"
    # scalable: no fixed name, no published port
    assert "container_name" not in services["classify"]
    assert "ports" not in services["classify"]
    for name in APP_SERVICES:
        assert "healthcheck" in services[name], f"{name} has no health check"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_build_context_and_dockerfile_exist(name: str) -> None:
    build = COMPOSE["services"][name]["build"]
    context = ROOT / build["context"]
    dockerfile = context / build["dockerfile"]
    assert context.is_dir()
    assert dockerfile.is_file()
    text = dockerfile.read_text()
    assert "USER " in text, "containers must not run as root"
    cmd = COMPOSE["services"][name]["command"]
    assert cmd[:2] == ["vigil", "run"]
    assert f'"{cmd[2]}"' in text  # the image's default command runs the same service


def _local_env(service: dict[str, Any], redis_url: str, port: int) -> dict[str, str]:
    env = {k: interpolate(str(v), {}) for k, v in service.get("environment", {}).items()}
    env["REDIS_URL"] = redis_url  # the compose network name "redis" is this test's server
    env["VIGIL_HTTP_PORT"] = str(port)
    env["VIGIL_HTTP_HOST"] = "127.0.0.1"
    # bind mounts: container paths in the environment point at the host files
    for volume in service.get("volumes", []):
        parts = volume.split(":")
        if parts[0].startswith("."):
            host = str((ROOT / parts[0]).resolve())
            env = {k: v.replace(parts[1], host) for k, v in env.items()}
    return {k: v for k, v in env.items() if v != ""}


@pytest.mark.e2e
@pytest.mark.parametrize("name", APP_SERVICES)
def test_each_service_command_starts_with_the_compose_environment(
    name: str, redis_url: str, tmp_path: Path
) -> None:
    service = COMPOSE["services"][name]
    port = free_port()
    env = {**os.environ, **_local_env(service, redis_url, port)}
    vigil = shutil.which("vigil", path=str(Path(sys.executable).parent)) or "vigil"
    command = [vigil, *service["command"][1:]]
    log = (tmp_path / f"{name}.log").open("wb")
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, name, tmp_path, timeout=60)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        assert health.status_code == 200, health.text
        # the compose health check itself, pointed at this port
        check = service["healthcheck"]["test"][1:]
        check = [c.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for c in check]
        check[0] = sys.executable
        assert subprocess.run(check, timeout=10).returncode == 0
    finally:
        proc.terminate()
        code = proc.wait(20)
        log.close()
    assert code == 0, (tmp_path / f"{name}.log").read_text()[-2000:]
