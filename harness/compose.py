"""The rendered compose files, read the way Docker Compose wires them.

Without an engine (the quick and native tiers), these helpers resolve what
`docker compose up` would create (real network names, which service joins
which network under which aliases) and what a healthcheck would run, so tests
can check them across files; the docker tier then sees the same on the engine.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from . import dotenv

COMPOSE_FILES = ("db/docker-compose.yml", "docker-compose.dev.yml")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


class Reset:
    """`!reset value` in an override file: the merged model drops the key."""

    def __init__(self, value):
        self.value = value


class Override:
    """`!override value` in an override file: replaces, never merges."""

    def __init__(self, value):
        self.value = value


class _OverrideLoader(yaml.SafeLoader):
    pass


def _construct(loader, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_OverrideLoader.add_constructor("!reset", lambda loader, node: Reset(_construct(loader, node)))
_OverrideLoader.add_constructor("!override", lambda loader, node: Override(_construct(loader, node)))


def parse(text: str):
    """Any YAML document; Compose's `!reset` and `!override` tags are read
    (harness.compose.Reset, Override) instead of refused."""
    return yaml.load(text, Loader=_OverrideLoader)


def load_override(path: Path) -> dict:
    """An override file (`docker compose -f base -f override`), its tags kept."""
    return parse(path.read_text())


def without_tags(value):
    """The override file as a plain YAML reader sees it: tags dropped."""
    if isinstance(value, (Reset, Override)):
        return without_tags(value.value)
    if isinstance(value, dict):
        return {key: without_tags(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_tags(item) for item in value]
    return value


def merged(base, override):
    """Compose's merge of `override` over `base`: mappings merge key by key,
    sequences are appended (without repeats), anything else is replaced;
    `!reset` removes the key and `!override` replaces the value whole."""
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        result = dict(base)
        for key, value in override.items():
            if isinstance(value, Reset):
                result.pop(key, None)
            elif key in result:
                result[key] = merged(result[key], value)
            else:
                result[key] = without_tags(value)
        return result
    if isinstance(base, list) and isinstance(override, list):
        return base + [item for item in override if item not in base]
    return without_tags(override)


def overridden(path: Path) -> Path | None:
    """The file `path` overrides (`docker compose -f base -f path`): a
    directory's docker-compose.prod.yml over its docker-compose.yml."""
    base = path.with_name("docker-compose.yml")
    return base if path.name == "docker-compose.prod.yml" and base.exists() else None


def spec_documents(project: Path, workdir: Path) -> list[Path]:
    """Every compose file of `project` as Compose reads it, for the
    compose-spec schema: a file as it is, an override (its `!reset` tags are
    not plain YAML) merged onto the file it overrides, written as JSON into
    `workdir`."""
    documents = []
    for path in sorted(project.rglob("docker-compose*.yml")):
        base = overridden(path)
        if base is None:
            documents.append(path)
            continue
        model = workdir / f"{'-'.join(path.relative_to(project).parts)}.merged.json"
        model.write_text(json.dumps(merged(load(base), load_override(path))))
        documents.append(model)
    return documents


def db_service(project: Path) -> tuple[str, dict]:
    """(name, definition) of the database in db/: the one service that is in
    no profile (the others, started on demand, only talk to it)."""
    (name, service), = ((name, service) for name, service in load(project / "db/docker-compose.yml")["services"].items()
                        if not service.get("profiles"))
    return name, service


def profile_services(project: Path) -> dict[str, dict]:
    """db/'s optional services: profile name -> (service name, definition)."""
    services = load(project / "db/docker-compose.yml")["services"]
    return {profile: (name, service) for name, service in services.items() for profile in service.get("profiles") or ()}


def network_name(compose: dict, key: str) -> str:
    """The Docker network `key` names: its `name:`, else `<project>_<key>`."""
    declared = (compose.get("networks") or {}).get(key) or {}
    return declared.get("name") or f"{compose['name']}_{key}"


def service_networks(compose: dict, service: dict) -> dict[str, set[str]]:
    """Real network name -> the service's aliases there. A service that names
    no network joins its project's `default` network."""
    networks = service.get("networks")
    if networks is None:
        return {network_name(compose, "default"): set()}
    if isinstance(networks, list):
        networks = dict.fromkeys(networks)
    return {network_name(compose, key): set((options or {}).get("aliases") or ())
            for key, options in networks.items()}


def topology(project: Path, files: tuple[str, ...] = COMPOSE_FILES) -> dict[str, dict[str, set[str]]]:
    """Every service of the project's compose `files` -> {network: aliases}.
    On each network a service also answers to its own service name."""
    services: dict[str, dict[str, set[str]]] = {}
    for relative in files:
        compose = load(project / relative)
        for name, service in compose["services"].items():
            if name in services:
                raise AssertionError(f"service {name!r} is defined in two compose files")
            services[name] = {network: aliases | {name}
                              for network, aliases in service_networks(compose, service).items()}
    return services


def resolves(services: dict[str, dict[str, set[str]]], client: str, host: str) -> set[str]:
    """Services that `host` names, as Docker's DNS answers it for `client`:
    those sharing a network with the client and known there by that name."""
    return {name for name, networks in services.items() if name != client
            for network, aliases in networks.items()
            if network in services[client] and host in aliases}


# What the rendered files may interpolate: a variable, braced, required or plain.
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?::\?(?P<message>[^}]*))?\}")


def unescape(value: str, dotenv: dict[str, str] | None = None) -> str:
    """What the container gets for a value written in a compose file: `$$` is
    a literal `$`; `${NAME}` and `${NAME:?message}` are `NAME` from `dotenv`,
    the project's .env, which compose reads for interpolation. Anything else
    after a `$` (and any name .env does not define) would come from the host's
    environment at `up` time, which no rendered file may rely on."""
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        variable = INTERPOLATION.fullmatch(match.group(0))
        if variable and dotenv is not None and variable["name"] in dotenv:
            return dotenv[variable["name"]]
        raise ValueError(f"compose would interpolate {match.group(0)!r} from the host in {value!r}")
    return re.sub(rf"\$\$|{INTERPOLATION.pattern}|\$.?", substitute, value)


def interpolated(path: Path) -> set[str]:
    """The variables a compose file interpolates (`$$` is an escape, not one);
    raises on any other use of `$`, which the rendered files never make."""
    text = path.read_text().replace("$$", "")
    if "$" in INTERPOLATION.sub("", text):
        raise ValueError(f"{path}: a `$` that is neither `$$` nor `${{NAME}}` / `${{NAME:?message}}`")
    return {match["name"] for match in INTERPOLATION.finditer(text)}


def healthcheck_command(service: dict) -> list[str]:
    """The argv Docker runs for the service's healthcheck."""
    kind, *args = service["healthcheck"]["test"]
    args = [unescape(arg) for arg in args]
    if kind == "CMD-SHELL":
        (script,) = args
        return ["/bin/sh", "-c", script]
    if kind == "CMD":
        return args
    raise ValueError(f"healthcheck test of kind {kind!r}")


def service_environment(project: Path, compose_file: str, service: str) -> dict[str, str]:
    """The environment compose gives `service` of `compose_file` (relative to
    `project`): its env_file, then its `environment:`, which wins; values
    unescaped (`$$`) and interpolated (`${NAME}`) from the compose file's
    directory's .env, as compose does. The image's own ENV is not included."""
    path = project / compose_file
    definition = load(path)["services"][service]
    project_dotenv = path.parent / ".env"
    interpolation = dotenv.load(project_dotenv) if project_dotenv.exists() else {}
    env_files = definition.get("env_file") or []
    env: dict[str, str] = {}
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        env.update(dotenv.load(path.parent / env_file))
    declared = definition.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared)
    for name, value in declared.items():
        if value is None:
            raise ValueError(f"{compose_file}: {service} takes {name} from the host's environment")
        if not isinstance(value, str):
            raise ValueError(f"{compose_file}: {service}'s {name} must be a string, not {value!r}")
        env[name] = unescape(value, interpolation)
    return env


def environments(project: Path) -> dict[str, dict[str, str]]:
    """The effective environment of the database, the backend and the
    frontend containers (service_environment), by role."""
    services = {"db": ("db/docker-compose.yml", db_service(project)[0]),
                "backend": ("docker-compose.dev.yml", "backend"),
                "frontend": ("docker-compose.dev.yml", "frontend")}
    return {role: service_environment(project, compose_file, service)
            for role, (compose_file, service) in services.items()}
