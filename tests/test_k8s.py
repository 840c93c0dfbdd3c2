"""deploy/k8s/: Kubernetes manifests (kustomize, CloudNativePG), behind the
`kubernetes` question.

Quick tier: what is rendered, and the database's settings against
db/postgresql.conf. Full tier: `kubectl kustomize` builds each overlay, every
object passes its schema, and the objects keep the architecture (network
policies, security contexts, secrets, images, migrations, routing, the task
worker, backups through the Barman Cloud plugin).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from harness import dotenv, k8s
from harness.answers import POSTGRES_VERSIONS, as_typed
from harness.k8s import Pod, reachable
from harness.python import venv_for
from harness.render import copy_in_process, validator

OVERLAYS = ["staging", "production"]
K8S_FILES = {
    "README.md", ".gitignore", "secrets/backend.env.example", "secrets/db-backup.env.example",
    *(f"base/{name}.yaml" for name in ["kustomization", "database", "backend", "worker", "frontend", "migrate",
                                        "ingress", "network-policies"]),
    *(f"overlays/{overlay}/{name}.yaml" for overlay in OVERLAYS for name in ["kustomization", "namespace"]),
}
MEMORY_SETTINGS = ["shared_buffers", "effective_cache_size", "maintenance_work_mem", "work_mem", "wal_buffers"]


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


def readme_secrets(readme: str, k8s_dir: Path) -> dict[str, set[str]]:
    """name -> keys of the Secrets the README's `kubectl create secret generic`
    commands make: --from-literal keys, and the keys of the example of each
    --from-env-file (the file the team fills in is a copy of it)."""
    secrets = {}
    for command in re.findall(r"create secret generic (\S+)((?:[^\n]*\\\n)*[^\n]*)", readme):
        name, arguments = command
        keys = set(re.findall(r"--from-literal=([\w.-]+)=", arguments))
        for env_file in re.findall(r"--from-env-file=(\S+)", arguments):
            keys |= set(dotenv.load(k8s_dir / f"{env_file}.example"))
        secrets[name] = keys
    return secrets


def secret_key_refs(obj: object) -> list[dict]:
    """Every {name, key} reference to a Secret's key in an object (secretKeyRef,
    and CloudNativePG's and the plugin's SecretKeySelectors)."""
    if isinstance(obj, dict):
        if set(obj) == {"name", "key"}:
            return [obj]
        return [ref for key, value in obj.items() if key != "configMapKeyRef" for ref in secret_key_refs(value)]
    if isinstance(obj, list):
        return [ref for value in obj for ref in secret_key_refs(value)]
    return []


def conf_settings(path: Path) -> dict[str, str]:
    """name -> value of a postgresql.conf, quotes removed."""
    settings = {}
    for line in path.read_text().splitlines():
        if match := re.match(r"^([a-z_.]+) = ('[^']*'|\S+)", line):
            settings[match[1]] = match[2].strip("'")
    return settings


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------
def test_kubernetes_is_off_by_default(default_project):
    assert as_typed(default_project)["kubernetes"] is False
    assert not (default_project / "deploy").exists()
    assert "deploy/k8s" not in (default_project / "README.md").read_text()


def test_kubernetes_renders_base_and_overlays(k8s_project):
    root = k8s_project / "deploy" / "k8s"
    assert {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} == K8S_FILES
    assert len(yaml_documents(root)) >= 20  # and every file parses
    assert "(deploy/k8s/README.md)" in (k8s_project / "README.md").read_text()


def test_manifests_hold_no_secret(k8s_project):
    """The generated secrets live in the git-ignored env files only: none of
    them appears under deploy/, which holds no Secret object either."""
    generated = [dotenv.load(k8s_project / "db/.env")[key] for key in ("POSTGRES_PASSWORD", "APP_DB_PASSWORD")]
    generated.append(dotenv.load(k8s_project / "back/.env")["DJANGO_SECRET_KEY"])
    for path in (k8s_project / "deploy").rglob("*"):
        if path.is_file():
            text = path.read_text()
            assert not [s for s in generated if s in text], path
    assert not [doc for doc in yaml_documents(k8s_project / "deploy") if doc.get("kind") == "Secret"]
    assert "secretGenerator" not in (k8s_project / "deploy/k8s/base/kustomization.yaml").read_text()


# One render per PostgreSQL major, each with another memory size.
VARIANTS = list(zip(POSTGRES_VERSIONS, [256, 1000, 4096, 65536, 1536]))


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"pg{v[0]}-{v[1]}MiB")
def variant(request, jinja_template, tmp_path_factory) -> tuple[Path, Path]:
    """(db/, deploy/k8s/base/) of a project with that major and db_memory_mb."""
    version, memory = request.param
    project = tmp_path_factory.mktemp("k8s") / "project"
    refusal = copy_in_process(jinja_template, {"kubernetes": True, "postgres_version": str(version),
                                               "db_memory_mb": str(memory)}, project)
    assert refusal is None, refusal
    return project / "db", project / "deploy/k8s/base"


def test_cluster_is_tuned_like_postgresql_conf(variant):
    """Every parameter the Cluster shares with postgresql.conf has the conf's
    value, the five memory settings among them; the memory the rules assume
    is the instances' request and limit."""
    db, base = variant
    conf = conf_settings(db / "postgresql.conf")
    cluster = one(yaml_documents(base), "Cluster")
    parameters = cluster["spec"]["postgresql"]["parameters"]
    assert set(MEMORY_SETTINGS) <= set(parameters)
    shared = set(parameters) & set(conf)
    assert {"max_connections", "max_worker_processes", "pg_stat_statements.track"} <= shared
    assert {name: parameters[name] for name in shared} == {name: conf[name] for name in shared}
    memory = f"{re.search(r'RAM = (\d+) MiB', (db / 'postgresql.conf').read_text())[1]}Mi"
    assert cluster["spec"]["resources"]["requests"]["memory"] == memory
    assert cluster["spec"]["resources"]["limits"]["memory"] == memory


def test_cluster_runs_the_minor_of_the_db_image(variant):
    """CloudNativePG's operand image is the PostgreSQL minor and Debian
    release of db/Dockerfile's official image."""
    db, base = variant
    official = re.search(r"^FROM postgres:(\d+\.\d+)-(\w+)$", (db / "Dockerfile").read_text(), re.M)
    image = one(yaml_documents(base), "Cluster")["spec"]["imageName"]
    assert image == f"ghcr.io/cloudnative-pg/postgresql:{official[1]}-standard-{official[2]}"


def test_domain_accepts_host_names(jinja_template):
    check = validator(jinja_template, "domain")
    for name in ["localhost", "app.example.com", "a.b-c.d", "xn--bcher-kva.example", "x1.example.com",
                 "a" * 63 + ".example.com"]:
        assert check({"domain": name}) == "", name


# ---------------------------------------------------------------------------
# Built overlays (full tier: kubectl)
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(k8s_project) -> dict[str, list[dict]]:
    """overlay -> the objects `kubectl kustomize` builds for it."""
    return {overlay: k8s.kustomize(k8s_project / "deploy/k8s/overlays" / overlay) for overlay in OVERLAYS}


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_its_schema(built, overlay):
    """Built-in kinds against Kubernetes' OpenAPI schemas (kubernetes-validate),
    CloudNativePG's against its 1.30 CRDs, the ObjectStore against the Barman
    Cloud plugin's 0.14 CRD; unknown fields are errors, as with `kubectl apply`."""
    objects = built[overlay]
    assert {"Cluster", "ObjectStore", "ScheduledBackup", "Database", "Deployment", "Service", "PodDisruptionBudget",
            "Job", "NetworkPolicy", "Ingress", "ConfigMap", "Namespace"} == {o["kind"] for o in objects}
    errors = {f"{o['kind']}/{o['metadata']['name']}": k8s.schema_errors(o) for o in objects}
    assert {name: e for name, e in errors.items() if e} == {}
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {f"giga-{overlay}"}


@pytest.mark.full
def test_the_plugins_schema_refuses_what_the_api_server_would(built):
    """The ObjectStore's validation is not blind: an unknown field, the
    retention where the in-tree API had it, a compression the plugin does not
    know, no destination, a version the CRD does not serve: all errors."""
    store = one(built["production"], "ObjectStore")
    assert k8s.schema_errors(store) == []

    def broken(change) -> dict:
        copy = json.loads(json.dumps(store))
        change(copy)
        return copy

    cases = {
        "unknown field": lambda o: o["spec"]["configuration"].update(bucket="x"),
        "retention in configuration": lambda o: o["spec"]["configuration"].update(retentionPolicy="30d"),
        "retention without a unit": lambda o: o["spec"].update(retentionPolicy="30"),
        "compression": lambda o: o["spec"]["configuration"]["data"].update(compression="zstd"),
        "no destination": lambda o: o["spec"]["configuration"].pop("destinationPath"),
        "version": lambda o: o.update(apiVersion="barmancloud.cnpg.io/v2"),
    }
    assert [name for name, change in cases.items() if not k8s.schema_errors(broken(change))] == []


@pytest.mark.full
def test_instances_and_replicas_per_overlay(built, jinja_template, tmp_path):
    """Staging: 1 PostgreSQL instance (no PodDisruptionBudget, which would
    block node drains), 1 backend and 1 frontend pod; production: the answer
    (5 here, 3 by default), 3 pods each. One task worker in both."""
    expected = {"staging": (1, 1), "production": (int(k8s.ANSWERS["k8s_instances_production"]), 3)}
    for overlay, (instances, replicas) in expected.items():
        objects = built[overlay]
        assert one(objects, "Cluster")["spec"]["instances"] == instances
        assert one(objects, "Cluster")["spec"].get("enablePDB", True) is (instances > 1)
        assert {k8s.pod_labels(o)["app.kubernetes.io/component"]: o["spec"]["replicas"]
                for o in objects if o["kind"] == "Deployment"} == {"backend": replicas, "frontend": replicas,
                                                                   "worker": 1}
    assert copy_in_process(jinja_template, {"kubernetes": True}, tmp_path / "p") is None
    production = k8s.kustomize(tmp_path / "p/deploy/k8s/overlays/production")
    assert one(production, "Cluster")["spec"]["instances"] == 3


def production_uid(dockerfile: Path) -> int:
    """The uid of the last stage's USER (the production image)."""
    return int(re.findall(r"^USER (\d+):\d+$", dockerfile.read_text(), re.M)[-1])


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_locked_down(built, k8s_project, overlay):
    """Non-root as the image's own uid, no privilege escalation, no
    capability, read-only root filesystem, the runtime's seccomp profile."""
    uids = {"backend": production_uid(k8s_project / "back/Dockerfile"),
            "migrate": production_uid(k8s_project / "back/Dockerfile"),
            "worker": production_uid(k8s_project / "back/Dockerfile"),
            "frontend": production_uid(k8s_project / "front/Dockerfile")}
    workloads = [o for o in built[overlay] if o["kind"] in ("Deployment", "Job")]
    assert sorted(k8s.pod_labels(o)["app.kubernetes.io/component"] for o in workloads) == sorted(uids)
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        component = k8s.pod_labels(workload)["app.kubernetes.io/component"]
        assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": uids[component],
                                          "runAsGroup": uids[component], "seccompProfile": {"type": "RuntimeDefault"}}
        assert pod["automountServiceAccountToken"] is False
        for container in k8s.containers(workload):
            assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                                    "capabilities": {"drop": ["ALL"]}}, container["name"]
            assert "memory" in container["resources"]["limits"] and container["resources"]["requests"]
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            assert "emptyDir" in {v["name"]: v for v in pod["volumes"]}[mounts["/tmp"]]


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_images_are_pinned(built, overlay):
    """Every image has a tag (not latest) or a digest, set by kustomize; the
    database's names a PostgreSQL minor."""
    objects = built[overlay]
    images = [c["image"] for o in objects if o["kind"] in ("Deployment", "Job") for c in k8s.containers(o)]
    assert len(images) == 4
    for image in images:
        assert re.fullmatch(r"[a-z0-9.-]+/[a-z0-9./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image), image
        assert not image.endswith(":latest")
    assert re.search(r":\d+\.\d+-", one(objects, "Cluster")["spec"]["imageName"])


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_enforce_the_architecture(built, overlay):
    objects = built[overlay]
    namespace = f"giga-{overlay}"
    backend = Pod(namespace, k8s.pod_labels(one(objects, "Deployment", "backend")))
    frontend = Pod(namespace, k8s.pod_labels(one(objects, "Deployment", "frontend")))
    migrate = Pod(namespace, k8s.pod_labels(one(objects, "Job")))
    worker = Pod(namespace, k8s.pod_labels(one(objects, "Deployment", "worker")))
    cluster = one(objects, "Cluster")["metadata"]["name"]
    primary = Pod(namespace, {"cnpg.io/cluster": cluster, "cnpg.io/instanceRole": "primary"})
    replica = Pod(namespace, {"cnpg.io/cluster": cluster, "cnpg.io/instanceRole": "replica"})
    stranger = Pod(namespace, {"app.kubernetes.io/name": "debug"})
    unlabeled = Pod(namespace)
    elsewhere = Pod("other-team", dict(backend.labels))
    controller = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    operator = Pod("cnpg-system", {"app.kubernetes.io/name": "cloudnative-pg"})
    dns = Pod("kube-system", {"k8s-app": "kube-dns"})
    # An SMTP server and the backups' object store, outside the cluster: no
    # policy guards their ingress.
    mail_server = Pod("the-internet")
    object_store = Pod("the-internet", {"role": "object-store"})
    smtp_ports = [25, 465, 587]
    backend_port = service(objects, "backend")["spec"]["ports"][0]["port"]
    frontend_port = service(objects, "frontend")["spec"]["ports"][0]["port"]
    db_ports = [5432, 8000, 9187]

    deny_all = [p for p in objects if p["kind"] == "NetworkPolicy" and p["spec"]["podSelector"] == {}
                and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
                and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert deny_all, "no default deny"

    allowed = [(backend, primary, 5432), (backend, replica, 5432), (migrate, primary, 5432),
               (frontend, backend, backend_port), (controller, frontend, frontend_port),
               (controller, backend, backend_port), (operator, primary, 8000), (operator, primary, 5432),
               (replica, primary, 5432), (primary, replica, 8000),
               (worker, primary, 5432), (worker, replica, 5432), *[(worker, mail_server, port) for port in smtp_ports],
               (backend, mail_server, 587), (backend, mail_server, 465),
               # The Barman Cloud plugin's sidecar, in each instance's pod,
               # uploads WAL files and base backups over HTTPS.
               (primary, object_store, 443), (replica, object_store, 443)]
    denied = [*[(source, db, port) for source in (frontend, controller, stranger, unlabeled, elsewhere, operator)
                for db in (primary, replica) for port in db_ports if (source, port) not in
                [(operator, 8000), (operator, 5432)]],
              (backend, frontend, frontend_port), (frontend, migrate, 8000), (primary, backend, backend_port),
              (primary, frontend, frontend_port), (migrate, backend, backend_port),
              (elsewhere, backend, backend_port), (elsewhere, frontend, frontend_port),
              *[(source, unlabeled, port) for source in (backend, frontend, primary, controller)
                for port in (backend_port, frontend_port, 5432, 80)],
              *[(unlabeled, target, port) for target in (backend, frontend, stranger, controller)
                for port in (backend_port, frontend_port, 80, 443)],
              # Nothing reaches the worker; it reaches nothing but the database and SMTP.
              *[(source, worker, port)
                for source in (backend, frontend, migrate, primary, replica, controller, operator, stranger, unlabeled,
                               elsewhere)
                for port in (backend_port, frontend_port, 80, 443, 5432, 8000)],
              *[(worker, target, port) for target in (backend, frontend, stranger)
                for port in (backend_port, frontend_port, 80)],
              *[(worker, db, port) for db in (primary, replica) for port in (8000, 9187)],
              *[(worker, mail_server, port) for port in (80, 443, 2525)],
              *[(source, mail_server, port) for source in (frontend, migrate, stranger) for port in smtp_ports],
              *[(source, object_store, 443) for source in (backend, frontend, migrate, worker, stranger)]]
    assert [case for case in allowed if not reachable(objects, *case)] == []
    assert [case for case in denied if reachable(objects, *case)] == []
    for pod in (backend, frontend, migrate, worker, primary, unlabeled):
        assert reachable(objects, pod, dns, 53, "UDP") and reachable(objects, pod, dns, 53, "TCP")
    # The database's own ingress policy, whatever the clients' egress: of the
    # app's pods, it admits the backend's, the migration Job's and the worker's.
    db_policies = [p for p in objects if p["kind"] == "NetworkPolicy"
                   and p["spec"]["podSelector"].get("matchLabels", {}).get("cnpg.io/cluster") == cluster]
    assert len(db_policies) == 1
    admitted = {k8s.pod_labels(o)["app.kubernetes.io/component"] for o in objects if o["kind"] in ("Deployment", "Job")
                if reachable(db_policies, Pod(namespace, k8s.pod_labels(o)), primary, 5432)}
    assert admitted == {"backend", "migrate", "worker"}


@pytest.mark.full
def test_network_policy_evaluator_sees_a_hole(built):
    """The evaluator is not blind: a policy that lets the frontend reach the
    database is reported as such."""
    objects = built["production"]
    frontend = Pod("giga-production", k8s.pod_labels(one(objects, "Deployment", "frontend")))
    primary = Pod("giga-production", {"cnpg.io/cluster": one(objects, "Cluster")["metadata"]["name"]})
    assert not reachable(objects, frontend, primary, 5432)
    hole = {"kind": "NetworkPolicy", "metadata": {"name": "hole", "namespace": "giga-production"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"podSelector": {}}]}]}}
    assert reachable([*objects, hole], frontend, primary, 5432)


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_reference_each_other(built, k8s_project, overlay):
    """Selectors select the pods, the Ingress names real Services and ports,
    configMapRefs name built ConfigMaps, and the Secrets referenced are the
    ones deploy/k8s/README.md tells the team to create."""
    objects = built[overlay]
    pods = [k8s.pod_labels(o) for o in objects if o["kind"] in ("Deployment", "Job")]
    for obj in objects:
        if obj["kind"] in ("Service", "PodDisruptionBudget"):
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert any(selector.items() <= labels.items() for labels in pods), obj["metadata"]["name"]
    services = {o["metadata"]["name"]: {p["name"] for p in o["spec"]["ports"]} for o in objects if o["kind"] == "Service"}
    ingress = one(objects, "Ingress")
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        service = path["backend"]["service"]
        assert service["port"]["name"] in services[service["name"]]
    config_maps = {o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"}
    secrets = set()
    for workload in (o for o in objects if o["kind"] in ("Deployment", "Job")):
        for container in k8s.containers(workload):
            for source in container.get("envFrom", []):
                if "configMapRef" in source:
                    assert source["configMapRef"]["name"] in config_maps
                else:
                    secrets.add(source["secretRef"]["name"])
            secrets |= {e["valueFrom"]["secretKeyRef"]["name"] for e in container.get("env", []) if "valueFrom" in e}
    cluster = one(objects, "Cluster")["spec"]
    secrets.add(cluster["bootstrap"]["initdb"]["secret"]["name"])
    secrets |= {ref["name"] for ref in secret_key_refs(one(objects, "ObjectStore")["spec"])}
    readme = (k8s_project / "deploy/k8s/README.md").read_text()
    assert set(re.findall(r"create secret generic (\S+)", readme)) == secrets


PLUGIN = "barman-cloud.cloudnative-pg.io"


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backups_go_through_the_barman_cloud_plugin(built, overlay):
    """The Cluster archives its WAL through the plugin, to an ObjectStore of
    the same build, and no longer through the in-tree
    `backup.barmanObjectStore` (both at once would be refused); the store
    keeps 30 days, compressed; the nightly ScheduledBackup asks the plugin."""
    objects = built[overlay]
    cluster = one(objects, "Cluster")
    spec = cluster["spec"]
    assert "barmanObjectStore" not in spec.get("backup", {})
    assert "retentionPolicy" not in spec.get("backup", {}), "the ObjectStore's now"
    assert [c for c in spec.get("externalClusters", []) if "barmanObjectStore" in c] == []
    [archiver] = [p for p in spec["plugins"] if p.get("isWALArchiver")]
    assert archiver["name"] == PLUGIN and archiver.get("enabled", True)
    stores = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ObjectStore"}
    assert archiver["parameters"]["barmanObjectName"] in stores, "no such ObjectStore in the build"
    store = stores[archiver["parameters"]["barmanObjectName"]]
    assert store["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    # The archive goes under the cluster's name, where the in-tree one wrote.
    assert "serverName" not in archiver["parameters"] and "serverName" not in store["spec"]["configuration"]
    assert store["spec"]["retentionPolicy"] == "30d"
    configuration = store["spec"]["configuration"]
    assert (configuration["wal"]["compression"], configuration["data"]["compression"]) == ("gzip", "gzip")
    assert configuration["destinationPath"] == f"s3://giga-db-backups/{overlay}/"
    [nightly] = [o for o in objects if o["kind"] == "ScheduledBackup"]
    assert nightly["spec"]["cluster"]["name"] == cluster["metadata"]["name"]
    assert nightly["spec"]["method"] == "plugin"
    assert nightly["spec"]["pluginConfiguration"]["name"] == archiver["name"]
    assert nightly["spec"]["schedule"] == "0 0 3 * * *"


@pytest.mark.full
def test_each_environment_archives_to_its_own_path(built):
    """Two clusters archiving to the same place would overwrite each other's
    WAL: staging and production have their own destination."""
    paths = [one(built[overlay], "ObjectStore")["spec"]["configuration"]["destinationPath"] for overlay in OVERLAYS]
    assert len(set(paths)) == len(OVERLAYS)
    assert not any(a.startswith(b) for a in paths for b in paths if a != b)


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_key_referenced_is_one_the_readme_creates(built, k8s_project, overlay):
    """The object store's credentials, the database password and every
    secretKeyRef name a key of a Secret that deploy/k8s/README.md creates
    (--from-literal, or the keys of the env file's example)."""
    objects = built[overlay]
    root = k8s_project / "deploy/k8s"
    created = readme_secrets((root / "README.md").read_text(), root)
    store = one(objects, "ObjectStore")
    credentials = secret_key_refs(store["spec"]["configuration"]["s3Credentials"])
    assert len(credentials) == 2
    references = [*credentials, *(ref for o in objects if o["kind"] in ("Deployment", "Job")
                                  for ref in secret_key_refs(k8s.containers(o)))]
    bootstrap = one(objects, "Cluster")["spec"]["bootstrap"]["initdb"]["secret"]["name"]
    references += [{"name": bootstrap, "key": "username"}, {"name": bootstrap, "key": "password"}]
    assert [ref for ref in references if ref["key"] not in created.get(ref["name"], set())] == []


def readme_restore(readme: str) -> dict:
    """The Cluster of the README's restore example."""
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "recovery:" in b]
    return yaml.safe_load(textwrap.dedent(block))


@pytest.mark.full
def test_the_readme_restores_from_the_plugins_archive(built, k8s_project):
    """The README's recovery is a valid Cluster that reads, through the
    plugin, the ObjectStore and the directory the running cluster archives
    to, on the same image, and gives the app's owner the password the
    backend has."""
    objects = built["production"]
    cluster, store = one(objects, "Cluster"), one(objects, "ObjectStore")
    restored = readme_restore((k8s_project / "deploy/k8s/README.md").read_text())
    assert k8s.schema_errors(restored) == []
    spec = restored["spec"]
    assert restored["metadata"]["name"] != cluster["metadata"]["name"]
    assert "managed" not in spec, "the running cluster holds the Service's name"
    assert spec["imageName"] == cluster["spec"]["imageName"]
    recovery = spec["bootstrap"]["recovery"]
    [source] = [c for c in spec["externalClusters"] if c["name"] == recovery["source"]]
    assert "barmanObjectStore" not in source
    assert source["plugin"]["name"] == PLUGIN
    assert source["plugin"]["parameters"] == {"barmanObjectName": store["metadata"]["name"],
                                              "serverName": cluster["metadata"]["name"]}
    initdb = cluster["spec"]["bootstrap"]["initdb"]
    assert {key: recovery[key] for key in ("database", "owner", "secret")} == \
        {key: initdb[key] for key in ("database", "owner", "secret")}


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_serves_the_domain_over_https(built, overlay):
    """/api/, /admin/ and /static/ go to Django, the rest to SvelteKit, with a
    cert-manager certificate for the overlay's host, which Django and
    SvelteKit are configured for."""
    objects = built[overlay]
    host = {"staging": "staging.", "production": ""}[overlay] + k8s.ANSWERS["domain"]
    ingress = one(objects, "Ingress")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"]
    assert [rule["host"] for rule in ingress["spec"]["rules"]] == [host]
    assert ingress["spec"]["tls"][0]["hosts"] == [host]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    backend = service(objects, "backend")["metadata"]["name"]
    frontend = service(objects, "frontend")["metadata"]["name"]
    assert routes == {"/api/": backend, "/admin/": backend, "/static/": backend, "/": frontend}
    config = {o["metadata"]["name"].rsplit("-", 1)[0]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    assert host in config["giga-backend-config"]["DJANGO_ALLOWED_HOSTS"].split(",")
    assert config["giga-backend-config"]["DJANGO_CSRF_TRUSTED_ORIGINS"] == f"https://{host}"
    assert config["giga-frontend-config"]["ORIGIN"] == f"https://{host}"
    assert config["giga-backend-config"]["FRONTEND_URL"] == f"https://{host}", "the links of account mails"
    # Behind the ingress controller, SvelteKit takes the browser's address from
    # X-Forwarded-For, so its probes must send one.
    assert (config["giga-frontend-config"]["ADDRESS_HEADER"], config["giga-frontend-config"]["XFF_DEPTH"]) == \
        ("X-Forwarded-For", "1")
    container = one(objects, "Deployment", "frontend")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert {"name": "X-Forwarded-For", "value": "127.0.0.1"} in container[probe]["httpGet"]["httpHeaders"], probe


def container_env(objects: list[dict], workload: dict) -> dict[str, str]:
    """What the workload's container gets from ConfigMaps and literal values
    (the Secrets left out), later sources winning, as kubelet builds it."""
    config_maps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    container = k8s.containers(workload)[0]
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]])
    env.update({e["name"]: e["value"] for e in container.get("env", []) if "value" in e})
    return env


# A pod of the ingress controller (in the pod network of kubeadm with Flannel),
# the visitors it forwards, and a stranger connecting to the backend directly.
INGRESS_POD, INGRESS_POD_V6 = "10.244.3.17", "fd00:10:244:3::11"
VISITOR, VISITOR_V6, STRANGER = "198.51.100.7", "2001:db8:77:1:2:3:4:5", "203.0.113.9"
TRUST_PROBE = """
import json, sys
import django
django.setup()
from django.test import RequestFactory
from personas.ratelimit import check_trusted_proxies, client_address
rf = RequestFactory()
print(json.dumps({
    "errors": [error.msg for error in check_trusted_proxies()],
    "clients": [client_address(rf.post("/admin/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded))
                for remote, forwarded in json.loads(sys.argv[1])],
}))
"""


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_backend_trusts_the_ingress_controllers_network(built, k8s_project, overlay):
    """The ingress controller sends /api/ and /admin/ straight to Django. Its
    pods' network is in the backend's environment (and the migration Job's,
    whose `migrate` runs the system checks), and Django, configured with that
    environment, believes X-Forwarded-For from any pod in it: each visitor
    counts as itself, not every one as the controller. From elsewhere the
    header is ignored."""
    objects = built[overlay]
    env = container_env(objects, one(objects, "Deployment", "backend"))
    assert container_env(objects, one(objects, "Job"))["DJANGO_INGRESS_PROXIES"] == env["DJANGO_INGRESS_PROXIES"]
    networks = [ipaddress.ip_network(entry) for entry in env["DJANGO_INGRESS_PROXIES"].split(",")]
    for address, trusted in [(INGRESS_POD, True), (INGRESS_POD_V6, True), (STRANGER, False), (VISITOR_V6, False)]:
        assert any(ipaddress.ip_address(address) in network for network in networks) is trusted, address
    venv = venv_for(k8s_project / "back")
    cases = [(INGRESS_POD, VISITOR), (INGRESS_POD_V6, VISITOR), (INGRESS_POD, VISITOR_V6), (STRANGER, VISITOR)]
    secrets = {"DJANGO_SECRET_KEY": "k8s-" + "x" * 60, "DB_PASSWORD": "x",
               "EMAIL_URL": "smtp+tls://m:x@smtp.example.com:587"}  # the Secrets' keys
    result = subprocess.run([str(venv / "bin/python"), "-c", TRUST_PROBE, json.dumps(cases)], cwd=k8s_project / "back",
                            env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root"),
                                 "LANG": "C.UTF-8", **env, **secrets},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    probe = json.loads(result.stdout.splitlines()[-1])
    assert probe["errors"] == []
    assert probe["clients"] == [VISITOR, VISITOR, "2001:db8:77:1::/64", STRANGER]


@pytest.mark.full
def test_the_ingress_controllers_network_is_each_overlays_setting(built, k8s_project, tmp_path):
    """The README's way to narrow it to a cluster's pod network: one line of
    the overlay's kustomization.yaml, which the other overlay does not see."""
    deploy = tmp_path / "k8s"
    shutil.copytree(k8s_project / "deploy/k8s", deploy)
    staging = deploy / "overlays/staging/kustomization.yaml"
    text, count = re.subn(r"(?m)^(\s+- DJANGO_INGRESS_PROXIES=).*$", r"\g<1>10.244.0.0/16,fd00:10:244::/56",
                          staging.read_text())
    assert count == 1
    staging.write_text(text)
    def ingress_proxies(objects):
        return container_env(objects, one(objects, "Deployment", "backend"))["DJANGO_INGRESS_PROXIES"]

    assert ingress_proxies(k8s.kustomize(deploy / "overlays/staging")) == "10.244.0.0/16,fd00:10:244::/56"
    assert ingress_proxies(k8s.kustomize(deploy / "overlays/production")) == ingress_proxies(built["production"])


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_migrations_run_once_before_the_rollout(built, k8s_project, overlay):
    """A Job migrates; no Deployment does. The README's release steps apply
    everything but the Deployments, wait for the Job, then apply the rest:
    its label selector must keep the Deployments out and the Job in."""
    objects = built[overlay]
    job = one(objects, "Job")
    assert k8s.containers(job)[0]["command"][-3:] == ["manage.py", "migrate", "--noinput"]
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        for container in k8s.containers(deployment):
            assert "migrate" not in " ".join(container.get("command", []) + container.get("args", []))
    for config in (o for o in objects if o["kind"] == "ConfigMap"):
        assert config["data"].get("DJANGO_MIGRATE_ON_START", "0") == "0"
    readme = (k8s_project / "deploy/k8s/README.md").read_text()
    selector = re.search(r"kubectl apply -k \. -l '(\S+) notin \(([^)]*)\)'", readme)
    key, excluded = selector[1], selector[2].split(",")
    first = [o for o in objects if o["metadata"].get("labels", {}).get(key) not in excluded]
    assert job in first and one(objects, "Cluster") in first and one(objects, "ObjectStore") in first
    assert not [o for o in first if o["kind"] == "Deployment"]
    steps = [readme.index(selector[0]), readme.index("wait --for=condition=complete job/"),
             readme.index("kubectl apply -k .\n")]
    assert steps == sorted(steps)


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_worker_runs_the_queued_tasks(built, k8s_project, overlay):
    """One pod of the backend's image, with its environment and Secrets, runs
    `manage.py db_worker` through the image's entrypoint (which waits for the
    database), is restarted when `manage.py worker_health` fails, and serves
    nothing: no port, no Service, no disruption budget."""
    objects = built[overlay]
    worker, backend = one(objects, "Deployment", "worker"), one(objects, "Deployment", "backend")
    assert worker["spec"]["replicas"] == 1
    [container] = k8s.containers(worker)
    [web] = k8s.containers(backend)
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", (k8s_project / "back/Dockerfile").read_text(), re.M)[1])
    assert container["command"] == [*entrypoint, "python", "manage.py", "db_worker"]
    assert "args" not in container
    assert container["image"] == web["image"]
    assert container["envFrom"] == web["envFrom"] and container["env"] == web["env"]
    assert container_env(objects, worker) == container_env(objects, backend)
    probe = container["livenessProbe"]
    assert probe["exec"]["command"] == ["python", "manage.py", "worker_health"]
    # Each check starts Django: a second of CPU, more on a busy node.
    assert probe["timeoutSeconds"] >= 10 and probe["periodSeconds"] >= 30
    assert container["resources"]["limits"]["memory"] == "256Mi"
    assert "ports" not in container
    labels = k8s.pod_labels(worker)
    for obj in objects:
        if obj["kind"] in ("Service", "PodDisruptionBudget"):
            selector = obj["spec"]["selector"]
            assert not selector.get("matchLabels", selector).items() <= labels.items(), obj["metadata"]["name"]
    # The commands exist in the rendered backend.
    commands = {path.stem for path in (k8s_project / "back").glob("*/management/commands/*.py")}
    assert "worker_health" in commands
    assert '"django_tasks_db"' in next((k8s_project / "back").glob("*/settings.py")).read_text()


@pytest.mark.full
def test_free_text_arrives_verbatim_in_the_config_maps(render):
    """The project name and the admin address, with YAML's and env's special
    characters, reach the containers' environment unchanged."""
    awkward = {"project_name": 'Giga "ü" #1: x\'s', "project_slug": "giga", "admin_email": "\"o'b:#x\"@example.com"}
    project = render({**k8s.ANSWERS, **awkward})
    data = {}
    for obj in k8s.kustomize(project / "deploy/k8s/overlays/production"):
        if obj["kind"] == "ConfigMap":
            data.update(obj["data"])
    assert data["PUBLIC_PROJECT_NAME"] == awkward["project_name"]
    assert data["DJANGO_ADMIN_EMAIL"] == awkward["admin_email"]
