"""Quick tier: the generated project's Renovate configuration
(.github/renovate.json) validates against Renovate's published schema
(tests/schemas/renovate/), finds every ecosystem of the project, groups
updates weekly keeping exact pins, skips the images the project builds; the
docs/updating.md documents updates, drift and Renovate.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from harness import compose
from harness.answers import recorded
from harness.render import REPO, project_files


WORKFLOWS = ".github/workflows"
UPDATE_WORKFLOW = f"{WORKFLOWS}/template-update.yml"
RENOVATE = ".github/renovate.json"
RENOVATE_SCHEMA = REPO / "tests/schemas/renovate/renovate-schema.json"


# ===========================================================================
# The Renovate configuration
# ===========================================================================
def renovate(project: Path) -> dict:
    return json.loads((project / RENOVATE).read_text())


def renovate_schema() -> dict:
    return json.loads(RENOVATE_SCHEMA.read_text())


def default_patterns(manager: str) -> list[re.Pattern]:
    """The manager's own managerFilePatterns, as Renovate's schema gives them (/regex/)."""
    patterns = renovate_schema()["definitions"][manager]["default"]["managerFilePatterns"]
    return [re.compile(pattern.strip("/")) for pattern in patterns]


def test_renovate_config_validates_against_renovates_schema(example):
    schema = renovate_schema()
    config = renovate(example)
    jsonschema.Draft7Validator(schema).validate(config)
    # the schema allows unknown keys: each one used must be an option it
    # defines (a rule takes its own match* options and the general ones)
    rule_options = set(schema["definitions"]["packageRules"]["items"]["allOf"][0]["properties"]) | set(
        schema["properties"])
    assert set(config) - {"$schema"} <= set(schema["properties"])
    for rule in config["packageRules"]:
        assert set(rule) <= rule_options, set(rule) - rule_options
        assert set(rule.get("matchManagers", [])) <= set(schema["properties"]), rule
    # the check itself: a wrong value is refused
    for broken in ({**config, "rangeStrategy": "exact"}, {**config, "packageRules": {}},
                   {**config, "pinDigests": "yes"}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft7Validator(schema).validate(broken)


# ecosystem: (the manager, the project's files it must find)
ECOSYSTEMS = {
    "pip": ("pip_requirements", ["back/requirements.txt", "back/requirements-dev.txt", "scripts/requirements.txt"]),
    "npm": ("npm", ["front/package.json"]),
    "Dockerfiles": ("dockerfile", ["db/Dockerfile", "back/Dockerfile", "front/Dockerfile"]),
    "compose image: lines": ("docker-compose", ["db/docker-compose.yml", "docker-compose.dev.yml",
                                                "docker-compose.prod.yml"]),
    "GitHub Actions": ("github-actions", [".github/workflows/ci.yml", ".github/workflows/template-update.yml"]),
    "Copier": ("copier", [".copier-answers.yml"]),
}


@pytest.mark.parametrize("ecosystem", ECOSYSTEMS)
def test_renovate_finds_every_ecosystem_in_the_project(default_project, ecosystem):
    manager, expected = ECOSYSTEMS[ecosystem]
    names = [p.relative_to(default_project).as_posix() for p in project_files(default_project)]
    found = {name for name in names for pattern in default_patterns(manager) if pattern.search(name)}
    assert set(expected) <= found, (manager, sorted(found))
    config = renovate(default_project)
    assert config.get(manager, {}).get("enabled", True) and "enabledManagers" not in config
    assert any(manager in rule.get("matchManagers", []) or
               manager in ("dockerfile", "docker-compose") and "docker" in rule.get("matchDatasources", [])
               for rule in config["packageRules"]), f"no rule names {manager}"
    if manager == "npm":
        assert (default_project / "front/package-lock.json").exists() and config["lockFileMaintenance"]["enabled"]


def test_renovate_groups_updates_weekly_and_keeps_exact_pins(default_project):
    config = renovate(default_project)
    assert config["rangeStrategy"] == "pin"
    assert "helpers:pinGitHubActionDigests" in config["extends"]
    assert config["timezone"] == recorded(default_project)["timezone"]
    for schedule in (config["schedule"], config["lockFileMaintenance"]["schedule"]):
        (cron,) = schedule
        assert cron.split()[2:] == ["*", "*", "1"], cron  # Mondays
    groups = [rule for rule in config["packageRules"] if "groupName" in rule]
    assert {rule["groupName"] for rule in groups} >= {"Python packages", "npm packages", "Docker images",
                                                      "GitHub Actions"}
    assert all("major" not in rule["matchUpdateTypes"] for rule in groups), "a major release gets its own PR"
    # a new PostgreSQL major is a data migration, not a dependency bump
    assert {"matchDatasources": ["docker"], "matchDepNames": ["postgres"], "matchUpdateTypes": ["major"],
            "enabled": False}.items() <= next(r for r in config["packageRules"]
                                              if r.get("matchDepNames") == ["postgres"]).items()
    # template releases: the workflow's pull request, Renovate's only on request
    (copier_rule,) = [rule for rule in config["packageRules"] if rule.get("matchManagers") == ["copier"]]
    assert copier_rule["dependencyDashboardApproval"] is True


def test_renovate_skips_the_images_the_project_builds(example):
    """The compose files' images named after the project are built from its
    Dockerfiles: no registry has them."""
    slug = recorded(example)["project_slug"]
    services = [service for path in sorted(example.rglob("docker-compose*.yml"))
                for service in (compose.parse(path.read_text()).get("services") or {}).values()]
    own = {service["image"].rsplit(":", 1)[0] for service in services
           if service.get("image", "").startswith(f"{slug}-")}
    assert own and all(any("build" in s and s.get("image", "").startswith(f"{image}:") for s in services)
                       for image in own), own
    (rule,) = [rule for rule in renovate(example)["packageRules"] if rule.get("enabled") is False
               and "postgres" not in rule.get("matchDepNames", [])]
    assert set(rule["matchDepNames"]) == own


def test_the_docs_document_updates_drift_and_renovate(example):
    updating = (example / "docs/updating.md").read_text()
    section = updating.split("## Keeping up to date", 1)[1]
    for needed in ("make template-update", "make template-drift", UPDATE_WORKFLOW, RENOVATE,
                   "template-update/<version>", "Allow GitHub Actions to create"):
        assert needed in section, needed
