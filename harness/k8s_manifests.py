"""Finding objects in deploy/k8s/'s manifests, rendered or built by
`kubectl kustomize`: the overlays, every YAML document of a directory, the
one object of a kind (and component), a component's Service, and what a
workload's container gets from ConfigMaps and literal values."""

from __future__ import annotations

from pathlib import Path

import yaml

from .k8s import containers

OVERLAYS = ["staging", "production"]


def yaml_documents(directory: Path) -> list[dict]:
    return [doc for path in sorted(directory.rglob("*.yaml"))
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def one(objects: list[dict], kind: str, component: str | None = None) -> dict:
    found = [o for o in objects if o["kind"] == kind
             and (component is None or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)]
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def service(objects: list[dict], component: str) -> dict:
    """The component's Service with a cluster IP (the frontend also has a headless one)."""
    found = [o for o in objects if o["kind"] == "Service" and o["spec"].get("clusterIP") != "None"
             and o["metadata"]["labels"]["app.kubernetes.io/component"] == component]
    assert len(found) == 1, found
    return found[0]


def container_env(objects: list[dict], workload: dict) -> dict[str, str]:
    """What the workload's container gets from ConfigMaps and literal values
    (the Secrets left out), later sources winning, as kubelet builds it."""
    config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    container = containers(workload)[0]
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env
