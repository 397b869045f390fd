"""deploy/ checked offline: the compose file has the services it promises, the Kubernetes manifests pass the
Kubernetes schemas (kubernetes-validate ships them) and follow the operating rules."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from fapiao.registry import WORKER_NAMES

DEPLOY = Path(__file__).parents[1] / "deploy"
WORKERS = set(WORKER_NAMES)
K8S_VERSION = "1.30.0"


def manifests():
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


def test_compose_services():
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kafka", "postgres", "migrate", "gateway"} | WORKERS <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft, no ZooKeeper
    for name in WORKERS:
        assert services[name]["command"] == ["worker", name]
        env = services[name]["environment"]
        assert env["FAPIAO_KAFKA_BOOTSTRAP"] == "kafka:9092" and env["FAPIAO_DATABASE_URL"].startswith("postgresql://")
    assert services["gateway"]["environment"]["FAPIAO_HTTP_HOST"] == "0.0.0.0"


@pytest.mark.parametrize("name,doc", list(manifests()), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_manifest_is_valid_kubernetes(name, doc):
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_worker_deployments_follow_the_rules():
    config = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "ConfigMap"}["fapiao"]
    partitions = int(config["data"]["FAPIAO_TOPIC_PARTITIONS"])
    deployments = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "Deployment"}
    assert {f"fapiao-{w}" for w in WORKERS} | {"fapiao-gateway"} == set(deployments)
    for name, d in deployments.items():
        spec = d["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert spec["terminationGracePeriodSeconds"] >= 30
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["readinessProbe"]["httpGet"] and container["livenessProbe"]["httpGet"]
        assert {"configMapRef": {"name": "fapiao"}} in container["envFrom"]
        assert {"secretRef": {"name": "fapiao"}} in container["envFrom"]
        if name != "fapiao-gateway":
            assert d["spec"]["replicas"] <= partitions
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["args"] == ["worker", name.removeprefix("fapiao-")]


def test_secrets_are_not_in_the_configmap():
    config = {d["metadata"]["name"]: d for _, d in manifests() if d["kind"] == "ConfigMap"}["fapiao"]
    assert not {"FAPIAO_DATABASE_URL", "FAPIAO_LINK_SECRET", "FAPIAO_SMTP_PASSWORD"} & set(config["data"])
