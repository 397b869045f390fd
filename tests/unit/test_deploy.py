"""deploy/ checked offline, without a Docker daemon or a cluster: the compose file and the Kubernetes manifests name
only settings that exist and values they accept, every port matches what the other side listens on, every probe
path is a route of the process probed, the manifests pass Kubernetes' own schemas (kubernetes-validate ships them),
and every worker of the registry is deployed, non-root, with resources, probes and a PodDisruptionBudget."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from fapiao.config import Settings, load_settings
from fapiao.registry import WORKER_NAMES

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"
IMAGE_UID = 10001
MAILPIT_SMTP_PORT = 1025  # axllent/mailpit's SMTP listener (its web UI and API: 8025)
POSTGRES_PORT = 5432
SETTING_NAMES = {f"FAPIAO_{name.upper()}" for name in Settings.model_fields}


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def manifests() -> list[tuple[str, dict]]:
    out = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        out += [(path.name, doc) for doc in yaml.safe_load_all(path.read_text()) if doc]
    return out


def kind(k: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == k}


def settings_from(env: dict[str, str], monkeypatch) -> Settings:
    """The Settings a process gets from exactly this environment (nothing from ours, no .env file)."""
    for name in list(__import__("os").environ):
        if name.startswith("FAPIAO_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return load_settings(_env_file=None)


def image_env() -> dict[str, str]:
    """The FAPIAO_ variables the image itself sets (its ENV lines): every container starts from them."""
    return dict(re.findall(r"(FAPIAO_\w+)=(\S+)", (DEPLOY / "Dockerfile").read_text()))


def k8s_env() -> dict[str, str]:
    config = kind("ConfigMap")["fapiao"]["data"]
    secret = kind("Secret")["fapiao"]["stringData"]
    return {**image_env(), **config, **secret}


def gateway_routes() -> set[str]:
    from fapiao.gateway.app import create_gateway

    app = create_gateway(Settings(_env_file=None, database_url="sqlite://"))
    return {r.resource.canonical for r in app.router.routes() if r.resource is not None}


def worker_routes(name: str, tmp_path) -> set[str]:
    from workers.app import create_app

    return set(create_app(Settings(_env_file=None, data_dir=tmp_path, database_url="sqlite://"), name).web.views)


def exporter_routes() -> set[str]:
    from workers.lag_exporter import create_exporter_app

    return {r.resource.canonical for r in create_exporter_app(Settings(_env_file=None)).router.routes()}


# --- the image ----------------------------------------------------------------------------------------------------


def test_image_is_multi_stage_non_root_with_a_healthcheck():
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    assert re.search(r"^COPY --from=build ", text, re.M)
    assert re.search(rf"^USER {IMAGE_UID}:{IMAGE_UID}$", text, re.M)  # numeric: runAsNonRoot can verify it
    assert "pip install -c constraints.txt ." in text  # the lock's versions, runtime dependencies only
    assert re.search(r"^HEALTHCHECK .*healthcheck\.py", text, re.M)
    env = image_env()
    assert set(env) <= SETTING_NAMES and env["FAPIAO_LOG_FORMAT"] == "json"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored


def test_healthcheck_probes_every_process_kind_on_its_port():
    text = (DEPLOY / "healthcheck.py").read_text()
    defaults = Settings(_env_file=None)
    for setting in ("http_port", "worker_port", "lag_exporter_port"):
        assert f'("FAPIAO_{setting.upper()}", "{getattr(defaults, setting)}")' in text
    assert "/healthz" in text


# --- compose --------------------------------------------------------------------------------------------------------


def test_compose_runs_every_worker_of_the_registry_and_the_rest():
    services = compose()["services"]
    workers = {n for n, s in services.items() if (s.get("command") or [None])[0] == "worker"}
    assert workers == set(WORKER_NAMES)
    for name in workers:
        assert services[name]["command"] == ["worker", name]
    assert {"kafka", "postgres", "mail", "migrate", "gateway", "lag-exporter"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    assert services["lag-exporter"]["command"] == ["lag-exporter"]
    assert services["gateway"]["command"] == ["gateway"]


def fapiao_services() -> dict[str, dict]:
    return {n: s for n, s in compose()["services"].items() if s.get("image", "").startswith("fapiao")}


def test_compose_environment_is_settings_that_exist_and_validate(monkeypatch):
    for name, service in fapiao_services().items():
        env = service["environment"]
        unknown = set(env) - SETTING_NAMES
        assert not unknown, f"{name}: {unknown} are not settings (fapiao/config.py)"
        settings_from({**image_env(), **env}, monkeypatch)  # raises ConfigError naming a bad value


def test_compose_ports_match_what_the_other_side_listens_on(monkeypatch):
    services = compose()["services"]
    kafka = services["kafka"]["environment"]
    advertised = dict(re.findall(r"(\w+)://([^,]+)", kafka["KAFKA_ADVERTISED_LISTENERS"]))
    listeners = dict(re.findall(r"(\w+)://([^,]*)", kafka["KAFKA_LISTENERS"]))
    pg = services["postgres"]["environment"]
    for name, service in fapiao_services().items():
        s = settings_from({**image_env(), **service["environment"]}, monkeypatch)
        assert s.kafka_bootstrap == advertised["PLAINTEXT"]
        assert s.kafka_bootstrap.split(":")[1] == listeners["PLAINTEXT"].rsplit(":", 1)[1]
        db = urlsplit(s.database_url)
        assert (db.hostname, db.port, db.path) == ("postgres", POSTGRES_PORT, "/" + pg["POSTGRES_DB"])
        assert (db.username, db.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
        assert (s.smtp_host, s.smtp_port) == ("mail", MAILPIT_SMTP_PORT)  # mailpit's SMTP, not 25
        assert "documents:/var/lib/fapiao" in service["volumes"] and str(s.data_dir) == "/var/lib/fapiao"
        for mapping in service.get("ports", []):
            container = int(str(mapping).rsplit(":", 1)[1])
            expected = {"gateway": s.http_port, "lag-exporter": s.lag_exporter_port}[name]
            assert container == expected, f"{name} publishes {container}, listens on {expected}"
    assert "8025:8025" in services["mail"]["ports"]


def test_compose_migrates_before_anything_starts():
    services = compose()["services"]
    assert "fapiao db upgrade" in " ".join(services["migrate"]["entrypoint"])
    assert services["migrate"]["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    for name, service in fapiao_services().items():
        if name != "migrate":
            assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}


# --- Kubernetes -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,doc", manifests(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_is_valid_kubernetes(name, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_k8s_environment_is_settings_that_exist_and_validate(monkeypatch):
    env = k8s_env()
    assert not set(env) - SETTING_NAMES, set(env) - SETTING_NAMES
    settings_from(env, monkeypatch)
    config = kind("ConfigMap")["fapiao"]["data"]
    assert not {"FAPIAO_DATABASE_URL", "FAPIAO_LINK_SECRET", "FAPIAO_ADMIN_TOKEN", "FAPIAO_SMTP_PASSWORD"} & set(config)


def test_every_worker_is_deployed_with_probes_on_its_routes(monkeypatch, tmp_path):
    s = settings_from(k8s_env(), monkeypatch)
    deployments = kind("Deployment")
    assert {f"fapiao-{w}" for w in WORKER_NAMES} | {"fapiao-gateway", "fapiao-lag-exporter"} == set(deployments)
    routes = {"fapiao-gateway": gateway_routes(), "fapiao-lag-exporter": exporter_routes()}
    ports = {"fapiao-gateway": s.http_port, "fapiao-lag-exporter": s.lag_exporter_port}
    for name, d in deployments.items():
        container = d["spec"]["template"]["spec"]["containers"][0]
        worker = name.removeprefix("fapiao-")
        if worker in WORKER_NAMES:
            assert container["args"] == ["worker", worker]
            assert d["spec"]["replicas"] <= s.topic_partitions
            routes[name] = worker_routes(worker, tmp_path)
            ports[name] = s.worker_port
        assert [p["containerPort"] for p in container["ports"]] == [ports[name]], name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            if probe in container:
                assert container[probe]["httpGet"]["path"] in routes[name], (name, probe, routes[name])
                assert container[probe]["httpGet"]["port"] == container["ports"][0]["name"]
        annotations = d["spec"]["template"]["metadata"].get("annotations", {})
        if "prometheus.io/port" in annotations:
            assert int(annotations["prometheus.io/port"]) == ports[name]
            assert annotations["prometheus.io/path"] in routes[name]
    assert "/readyz" in routes["fapiao-gateway"] and "/healthz" in routes["fapiao-gateway"]


def pods() -> list[tuple[str, dict]]:
    return [(n, d["spec"]["template"]["spec"]) for k in ("Deployment", "Job") for n, d in kind(k).items()]


def test_pods_run_as_the_image_user_and_can_write_the_volume():
    for name, spec in pods():
        sc = spec["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == IMAGE_UID, name
        assert sc["fsGroup"] == sc["runAsGroup"] == IMAGE_UID, name  # the volume is group-owned and writable
        for c in spec["containers"]:
            csc = c["securityContext"]
            assert csc["allowPrivilegeEscalation"] is False and csc["capabilities"] == {"drop": ["ALL"]}
            assert c["resources"]["requests"] and c["resources"]["limits"], (name, c["name"])
            mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
            if csc.get("readOnlyRootFilesystem"):
                assert "/tmp" in mounts, f"{name}: a read-only root needs a writable /tmp"
            if any(v.get("persistentVolumeClaim") for v in spec.get("volumes", [])):
                assert "/var/lib/fapiao" in mounts


def test_every_deployment_has_a_disruption_budget_selecting_its_pods():
    budgets = kind("PodDisruptionBudget")
    for name, d in kind("Deployment").items():
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        assert budgets[name]["spec"]["selector"]["matchLabels"] == d["spec"]["selector"]["matchLabels"]
        assert "maxUnavailable" in budgets[name]["spec"]  # a single-replica deployment can still be drained


def test_browser_tests_cannot_be_skipped_in_ci():
    """In CI the browser tests run or fail: a missing chromium is a failure there, never a skip."""
    import os
    import shutil

    if os.environ.get("CI"):
        assert shutil.which("chromium") or os.path.exists("/usr/bin/chromium"), (
            "CI=true but Debian's chromium is missing: the browser tests would not run"
        )


def test_smoke_script_talks_to_the_ports_compose_publishes():
    text = (DEPLOY / "smoke.sh").read_text()
    published = {str(p).split(":")[0] for s in compose()["services"].values() for p in s.get("ports", [])}
    used = set(re.findall(r"localhost:(\d+)", text))
    assert used and used <= published, (used, published)
    assert "deploy/docker-compose.yml" in text and "/api/v1/messages" in text  # mailpit's API


def test_readme_lists_every_worker_and_the_broker_differences():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in WORKER_NAMES:
        assert f"`fapiao worker {name}`" in readme, f"README's production list lacks {name}"
    assert "`fapiao lag-exporter`" in readme and "in memory only" in readme
    assert "deploy/smoke.sh" in readme and "/readyz" in readme
