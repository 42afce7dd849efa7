"""Deployment files agree with the code: compose runs all four services and the optional observability
profile; Prometheus scrapes every service; the Grafana dashboard only queries metrics Vigil exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import vigil_capfeed.service  # noqa: F401 - registers capfeed's own metric
import yaml
from prometheus_client import REGISTRY, generate_latest

ROOT = Path(__file__).parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
VIGIL_SERVICES = {"ingest", "classify", "notify", "capfeed"}


def test_compose_runs_the_four_services_and_observability_is_optional() -> None:
    services = COMPOSE["services"]
    assert set(services) >= VIGIL_SERVICES
    for name in VIGIL_SERVICES:
        svc = services[name]
        assert "profiles" not in svc, f"{name} must run on a plain `docker compose up`"
        assert (ROOT / svc["build"]["dockerfile"]).exists()
        assert svc["command"] == ["vigil", "run", name]
        assert "healthcheck" in svc
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for volume in services[name]["volumes"]:
            src = volume.split(":", 1)[0]
            if src.startswith("./"):
                assert (ROOT / src).exists(), src


def test_capfeed_image_is_built_like_the_others() -> None:
    dockerfile = (ROOT / "services/capfeed/Dockerfile").read_text()
    assert "uv sync --frozen --no-dev --no-editable --package vigil-capfeed" in dockerfile
    assert 'CMD ["vigil", "run", "capfeed"]' in dockerfile
    assert "/healthz" in dockerfile


def test_prometheus_scrapes_every_vigil_service() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "vigil")
    names = {n for sd in job["dns_sd_configs"] for n in sd["names"]}
    assert names == VIGIL_SERVICES
    assert all(sd["port"] == 8000 for sd in job["dns_sd_configs"])


def test_dashboard_queries_only_exported_metrics() -> None:
    dash = json.loads((ROOT / "deploy/grafana/vigil-dashboard.json").read_text())
    datasource = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    exported = {
        line.split()[2] for line in generate_latest(REGISTRY).decode().splitlines() if line.startswith("# TYPE")
    }
    used: set[str] = set()
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            used |= set(re.findall(r"\b(vigil_[a-z_]+)", target["expr"]))
    assert used
    for name in used:
        base = re.sub(r"_(bucket|count|sum|total)$", "", name)
        assert base in exported or name in exported, f"dashboard queries {name}, which nothing exports"
    # the list: flow, failures, dead letters, latency, lag, pending, deliveries, feed polls
    for needed in (
        "vigil_events_consumed_total",
        "vigil_events_published_total",
        "vigil_events_failed_total",
        "vigil_events_deadlettered_total",
        "vigil_handler_seconds_bucket",
        "vigil_group_lag",
        "vigil_group_pending",
        "vigil_deliveries_total",
        "vigil_feed_polls_total",
    ):
        assert needed in used, needed
