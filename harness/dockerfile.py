"""Reading a rendered Dockerfile: its stages, what each inherits, and its base images."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    name: str
    image: str  # what FROM names: an image, or an earlier stage
    instructions: list[tuple[str, str]] = field(default_factory=list)  # this stage's own (KEYWORD, arguments), FROM first
    env: dict[str, str] = field(default_factory=dict)
    bin_files: dict[str, str] = field(default_factory=dict)  # name in /usr/local/bin -> source in the context
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    workdir: str = "/"
    user: str = "root"
    healthcheck: list[str] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)  # this stage's own RUN commands


def _instructions(text: str) -> list[tuple[str, str]]:
    logical, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        current += line
        logical.append(current.strip())
        current = ""
    result = []
    for item in logical:
        keyword, _, rest = item.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    return result


def _exec_form(value: str) -> list[str]:
    value = value.strip()
    return json.loads(value) if value.startswith("[") else ["/bin/sh", "-c", value]


def dockerfile_stages(dockerfile: Path) -> dict[str, Stage]:
    """Every stage of the Dockerfile, with what it inherits; the key "" is the last."""
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, rest in _instructions(dockerfile.read_text()):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            parent = stages.get(words[0])
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else f"stage{len(stages)}"
            stage = Stage(name=name, image=words[0])
            if parent:
                stage.env = dict(parent.env)
                stage.bin_files = dict(parent.bin_files)
                stage.entrypoint = list(parent.entrypoint)
                stage.cmd = list(parent.cmd)
                stage.workdir = parent.workdir
                stage.user = parent.user
                stage.healthcheck = list(parent.healthcheck)
            stages[name] = stage
            stages[""] = stage
        elif stage is None:
            continue
        elif keyword == "ENV":
            for word in shlex.split(rest):
                key, _, value = word.partition("=")
                stage.env[key] = value
        elif keyword == "COPY":
            words = [w for w in shlex.split(rest) if not w.startswith("--")]
            *sources, destination = words
            if destination.startswith("/usr/local/bin/") and len(sources) == 1:
                stage.bin_files[destination.rsplit("/", 1)[1]] = sources[0]
        elif keyword == "ENTRYPOINT":
            stage.entrypoint = _exec_form(rest)
        elif keyword == "CMD":
            stage.cmd = _exec_form(rest)
        elif keyword == "WORKDIR":
            stage.workdir = rest
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "RUN":
            stage.runs.append(rest)
        elif keyword == "HEALTHCHECK":
            words = shlex.split(rest)
            if "CMD" in words:
                stage.healthcheck = _exec_form(rest.split("CMD", 1)[1])
        if stage is not None:
            stage.instructions.append((keyword, rest))
    return stages


def named_stages(dockerfile: Path) -> dict[str, Stage]:
    """The stages in file order, each once."""
    return {name: stage for name, stage in dockerfile_stages(dockerfile).items() if name}


def base_images(dockerfile: Path) -> list[str]:
    """The FROM images that are not earlier stages of the same file."""
    stages = named_stages(dockerfile)
    return [stage.image for stage in stages.values() if stage.image not in stages]
