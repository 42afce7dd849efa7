"""Containers and compose: non-root, read-only, per-service Redis users, no secrets baked in."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
# the services that have a Redis user in deploy/redis/render_acl.py
APPS = ["ingest", "classify", "notify", "capfeed"]


def test_redis_runs_with_the_rendered_acl_and_default_off() -> None:
    redis = COMPOSE["services"]["redis"]
    assert "--aclfile" in redis["command"]
    assert redis["depends_on"]["redis-acl"]["condition"] == "service_completed_successfully"
    assert "--require-all" in COMPOSE["services"]["redis-acl"]["command"]


@pytest.mark.parametrize("name", APPS)
def test_each_service_has_its_own_redis_user_and_a_read_only_root(name: str) -> None:
    service = COMPOSE["services"][name]
    url = service["environment"]["REDIS_URL"]
    assert url.startswith(f"redis://{name}:${{VIGIL_REDIS_PASSWORD_{name.upper()}")
    assert service["read_only"] is True


def test_no_secret_literal_in_compose_or_dockerfiles() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    for m in re.finditer(r"^\s*\w*(PASSWORD[A-Z_]*|API_KEYS)\s*:\s*(\S+)", text, re.M):
        assert m.group(2).startswith("${"), m.group(0)
    for dockerfile in ROOT.glob("services/*/Dockerfile"):
        content = dockerfile.read_text()
        assert re.search(r"^USER\s+(?!root\b|0\b)\S+", content, re.M), f"{dockerfile} runs as root"
        assert not re.search(r"^(ENV|ARG)\s+\S*(PASSWORD|SECRET|API_KEY|TOKEN)", content, re.M | re.I), dockerfile
