"""Full tier: the objects `kubectl kustomize` builds for each overlay: every
one passes its schema (Kubernetes', CloudNativePG's and the Barman Cloud
plugin's CRDs, unknown fields refused); instances and replicas; locked-down
containers and pinned images; references that resolve, to Secrets the
README creates; backups and restores through the plugin; migrations before
the rollout; the task worker; free text arriving verbatim.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from harness import dotenv, k8s
from harness.render import copy_in_process
from harness.k8s_manifests import OVERLAYS, container_env, one


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


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_passes_its_schema(k8s_built, overlay):
    """Built-in kinds against Kubernetes' OpenAPI schemas (kubernetes-validate),
    CloudNativePG's against its 1.30 CRDs, the ObjectStore against the Barman
    Cloud plugin's 0.14 CRD; unknown fields are errors, as with `kubectl apply`."""
    objects = k8s_built[overlay]
    assert {"Cluster", "ObjectStore", "ScheduledBackup", "Database", "Deployment", "Service", "PodDisruptionBudget",
            "Job", "NetworkPolicy", "Ingress", "ConfigMap", "Namespace"} == {o["kind"] for o in objects}
    errors = {f"{o['kind']}/{o['metadata']['name']}": k8s.schema_errors(o) for o in objects}
    assert {name: e for name, e in errors.items() if e} == {}
    assert {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"} == {f"giga-{overlay}"}


@pytest.mark.full
def test_the_plugins_schema_refuses_what_the_api_server_would(k8s_built):
    """The ObjectStore's validation is not blind: an unknown field, the
    retention where the in-tree API had it, a compression the plugin does not
    know, no destination, a version the CRD does not serve: all errors."""
    store = one(k8s_built["production"], "ObjectStore")
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
def test_instances_and_replicas_per_overlay(k8s_built, jinja_template, tmp_path):
    """Staging: 1 PostgreSQL instance (no PodDisruptionBudget, which would
    block node drains), 1 backend and 1 frontend pod; production: the answer
    (5 here, 3 by default), 3 pods each. One task worker in both."""
    expected = {"staging": (1, 1), "production": (int(k8s.ANSWERS["k8s_instances_production"]), 3)}
    for overlay, (instances, replicas) in expected.items():
        objects = k8s_built[overlay]
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
def test_every_container_is_locked_down(k8s_built, k8s_project, overlay):
    """Non-root as the image's own uid, no privilege escalation, no
    capability, read-only root filesystem, the runtime's seccomp profile."""
    uids = {"backend": production_uid(k8s_project / "back/Dockerfile"),
            "migrate": production_uid(k8s_project / "back/Dockerfile"),
            "worker": production_uid(k8s_project / "back/Dockerfile"),
            "frontend": production_uid(k8s_project / "front/Dockerfile")}
    workloads = [o for o in k8s_built[overlay] if o["kind"] in ("Deployment", "Job")]
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
def test_images_are_pinned(k8s_built, overlay):
    """Every image has a tag (not latest) or a digest, set by kustomize; the
    database's names a PostgreSQL minor."""
    objects = k8s_built[overlay]
    images = [c["image"] for o in objects if o["kind"] in ("Deployment", "Job") for c in k8s.containers(o)]
    assert len(images) == 4
    for image in images:
        assert re.fullmatch(r"[a-z0-9.-]+/[a-z0-9./-]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image), image
        assert not image.endswith(":latest")
    assert re.search(r":\d+\.\d+-", one(objects, "Cluster")["spec"]["imageName"])


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_objects_reference_each_other(k8s_built, k8s_project, overlay):
    """Selectors select the pods, the Ingress names real Services and ports,
    configMapRefs name built ConfigMaps, and the Secrets referenced are the
    ones deploy/k8s/README.md tells the team to create."""
    objects = k8s_built[overlay]
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
def test_backups_go_through_the_barman_cloud_plugin(k8s_built, overlay):
    """The Cluster archives its WAL through the plugin, to an ObjectStore of
    the same build, and no longer through the in-tree
    `backup.barmanObjectStore` (both at once would be refused); the store
    keeps 30 days, compressed; the nightly ScheduledBackup asks the plugin."""
    objects = k8s_built[overlay]
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
def test_each_environment_archives_to_its_own_path(k8s_built):
    """Two clusters archiving to the same place would overwrite each other's
    WAL: staging and production have their own destination."""
    paths = [one(k8s_built[overlay], "ObjectStore")["spec"]["configuration"]["destinationPath"] for overlay in OVERLAYS]
    assert len(set(paths)) == len(OVERLAYS)
    assert not any(a.startswith(b) for a in paths for b in paths if a != b)


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_key_referenced_is_one_the_readme_creates(k8s_built, k8s_project, overlay):
    """The object store's credentials, the database password and every
    secretKeyRef name a key of a Secret that deploy/k8s/README.md creates
    (--from-literal, or the keys of the env file's example)."""
    objects = k8s_built[overlay]
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
def test_the_readme_restores_from_the_plugins_archive(k8s_built, k8s_project):
    """The README's recovery is a valid Cluster that reads, through the
    plugin, the ObjectStore and the directory the running cluster archives
    to, on the same image, and gives the app's owner the password the
    backend has."""
    objects = k8s_built["production"]
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
def test_migrations_run_once_before_the_rollout(k8s_built, k8s_project, overlay):
    """A Job migrates; no Deployment does. The README's release steps apply
    everything but the Deployments, wait for the Job, then apply the rest:
    its label selector must keep the Deployments out and the Job in."""
    objects = k8s_built[overlay]
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
def test_the_worker_runs_the_queued_tasks(k8s_built, k8s_project, overlay):
    """One pod of the backend's image, with its environment and Secrets, runs
    `manage.py db_worker` through the image's entrypoint (which waits for the
    database), is restarted when `manage.py worker_health` fails, and serves
    nothing: no port, no Service, no disruption budget."""
    objects = k8s_built[overlay]
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
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_backend_probes_say_what_they_mean(k8s_built, k8s_project, overlay):
    """Liveness and startup ask /api/health/live/ (the process answers, no
    database): a database outage restarts no backend. Readiness asks
    /api/health/ (the database answers, every migration applied): a pod that
    cannot serve leaves the Service. Both with a Host Django allows."""
    objects = k8s_built[overlay]
    [web] = k8s.containers(one(objects, "Deployment", "backend"))
    paths = {probe: web[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert paths == {"livenessProbe": "/api/health/live/", "readinessProbe": "/api/health/",
                     "startupProbe": "/api/health/live/"}
    allowed = container_env(objects, one(objects, "Deployment", "backend"))["DJANGO_ALLOWED_HOSTS"].split(",")
    for probe in paths:
        assert web[probe]["httpGet"]["port"] == "http", probe
        [host] = [h["value"] for h in web[probe]["httpGet"]["httpHeaders"] if h["name"] == "Host"]
        assert host in allowed, (probe, host)
    urls = "".join(path.read_text() for path in (k8s_project / "back").glob("*/urls.py"))
    assert 'path("api/health/", HealthView' in urls and 'path("api/health/live/", LiveView' in urls


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
