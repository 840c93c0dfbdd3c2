"""Full tier: who reaches whom in the overlays `kubectl kustomize` builds: the
NetworkPolicies' intent pod by pod (harness.k8s.reachable), the Ingress
serving the domain over HTTPS, and the backend believing X-Forwarded-For
from the ingress controller's pod network only, as each overlay sets it.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess

import pytest

from harness import k8s
from harness.k8s import Pod, reachable
from harness.python import venv_for
from harness.k8s_manifests import OVERLAYS, container_env, one, service


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_enforce_the_architecture(k8s_built, overlay):
    objects = k8s_built[overlay]
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
def test_network_policy_evaluator_sees_a_hole(k8s_built):
    """The evaluator is not blind: a policy that lets the frontend reach the
    database is reported as such."""
    objects = k8s_built["production"]
    frontend = Pod("giga-production", k8s.pod_labels(one(objects, "Deployment", "frontend")))
    primary = Pod("giga-production", {"cnpg.io/cluster": one(objects, "Cluster")["metadata"]["name"]})
    assert not reachable(objects, frontend, primary, 5432)
    hole = {"kind": "NetworkPolicy", "metadata": {"name": "hole", "namespace": "giga-production"},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"podSelector": {}}]}], "egress": [{"to": [{"podSelector": {}}]}]}}
    assert reachable([*objects, hole], frontend, primary, 5432)


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_serves_the_domain_over_https(k8s_built, overlay):
    """/api/, /admin/ and /static/ go to Django, the rest to SvelteKit, with a
    cert-manager certificate for the overlay's host, which Django and
    SvelteKit are configured for."""
    objects = k8s_built[overlay]
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


@pytest.mark.full
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheus_scrapes_what_the_ingress_never_routes(k8s_built, overlay):
    """The pods say where their metrics are (prometheus.io/*); a Prometheus in
    the `monitoring` namespace reaches those ports and nothing else of the
    app's; the frontend's metrics port is in no Service, and the Ingress
    routes no /metrics to the backend."""
    objects = k8s_built[overlay]
    namespace = f"giga-{overlay}"
    prometheus = Pod("monitoring", {"app.kubernetes.io/name": "prometheus"})
    controller = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
    ports = {}
    for component in ("backend", "frontend"):
        template = one(objects, "Deployment", component)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/path"]) == ("true", "/metrics")
        ports[component] = int(annotations["prometheus.io/port"])
        assert ports[component] in {port["containerPort"] for port in template["spec"]["containers"][0]["ports"]}
        pod = Pod(namespace, k8s.pod_labels(one(objects, "Deployment", component)))
        assert reachable(objects, prometheus, pod, ports[component]), component
    frontend_pod = Pod(namespace, k8s.pod_labels(one(objects, "Deployment", "frontend")))
    frontend_port = service(objects, "frontend")["spec"]["ports"][0]["port"]
    assert ports["backend"] == service(objects, "backend")["spec"]["ports"][0]["port"]
    assert ports["frontend"] not in {port.get("targetPort", port["port"])
                                     for port in service(objects, "frontend")["spec"]["ports"]}
    assert not reachable(objects, prometheus, frontend_pod, frontend_port)
    assert not reachable(objects, controller, frontend_pod, ports["frontend"])
    cluster = one(objects, "Cluster")["metadata"]["name"]
    assert not reachable(objects, prometheus, Pod(namespace, {"cnpg.io/cluster": cluster,
                                                              "cnpg.io/instanceRole": "primary"}), 5432)
    paths = [path["path"] for path in one(objects, "Ingress")["spec"]["rules"][0]["http"]["paths"]]
    assert not [path for path in paths if path != "/" and "/metrics".startswith(path)], paths  # / is SvelteKit's


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
def test_the_backend_trusts_the_ingress_controllers_network(k8s_built, k8s_project, overlay):
    """The ingress controller sends /api/ and /admin/ straight to Django. Its
    pods' network is in the backend's environment (and the migration Job's,
    whose `migrate` runs the system checks), and Django, configured with that
    environment, believes X-Forwarded-For from any pod in it: each visitor
    counts as itself, not every one as the controller. From elsewhere the
    header is ignored."""
    objects = k8s_built[overlay]
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
def test_the_ingress_controllers_network_is_each_overlays_setting(k8s_built, k8s_project, tmp_path):
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
    assert ingress_proxies(k8s.kustomize(deploy / "overlays/production")) == ingress_proxies(k8s_built["production"])
