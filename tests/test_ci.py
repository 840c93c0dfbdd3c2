"""The generated project's CI and habits (.github/workflows/ci.yml,
.pre-commit-config.yaml, .gitattributes, .editorconfig), and the template's
smoke command (scripts/smoke), which runs those checks natively.

GitHub's runner is not here: the workflow is held to actionlint, GitHub's
workflow schema and zizmor (its `stack` job also runs step by step on the
real engine, test_docker_ci.py), and to the files it must
agree with (db/Dockerfile's image, db/init, the Dockerfiles' runtimes,
front/package.json's scripts). The pre-commit hooks cannot be cloned here (no
github.com): the conflict-marker hook runs from its PyPI release instead.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from harness import compose, dotenv, images, make
from harness.answers import recorded as answers, secrets as secrets_of
from harness.dockerfile import base_images
from harness.render import EXAMPLES, REPO, project_files
from harness.smoke import hook_args, main as smoke, shell_scripts
from harness.workflows import PINNED_ACTION, RunStep, actionlint, run_step, run_steps, zizmor

WORKFLOW = ".github/workflows/ci.yml"


def workflow(project: Path) -> dict:
    return yaml.safe_load((project / WORKFLOW).read_text())


def steps(project: Path, job: str) -> list[dict]:
    return workflow(project)["jobs"][job]["steps"]


def run_lines(project: Path, job: str) -> str:
    return "\n".join(step.get("run", "") for step in steps(project, job))


def git_project(project: Path, destination: Path, *config: str) -> Path:
    """A copy of `project`, committed in a new git repository."""
    shutil.copytree(project, destination, ignore=shutil.ignore_patterns("node_modules"))
    for args in (["init", "-q"], *(["config", *pair.split("=", 1)] for pair in config), ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "first"]):
        subprocess.run(["git", *args], cwd=destination, check=True)
    return destination


# ===========================================================================
# .github/workflows/ci.yml
# ===========================================================================
JOBS = {"back", "front", "lint", "stack"}


def test_workflow_runs_the_agreed_jobs(example):
    assert set(workflow(example)["jobs"]) == JOBS


def test_workflow_passes_actionlint(example):
    assert actionlint(example / WORKFLOW) == []


def test_actionlint_reports_a_broken_workflow(example, tmp_path):
    broken = tmp_path / "ci.yml"
    text = (example / WORKFLOW).read_text()
    broken.write_text(text.replace("runs-on: ubuntu-latest", "runs-on: ubuntu-latst", 1)
                      .replace("github.workflow", "github.workfow")
                      .replace("timeout-minutes: 15", "timeout-minutes: 15\n    needs: [nowhere]"))
    kinds = {finding["kind"] for finding in actionlint(broken)}
    assert {"runner-label", "expression", "job-needs"} <= kinds, kinds


def test_workflow_matches_githubs_schema(example):
    result = subprocess.run(["check-jsonschema", "--builtin-schema", "vendor.github-workflows", str(example / WORKFLOW)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_has_no_zizmor_findings(example):
    result = zizmor(example, example / WORKFLOW)
    assert result.returncode == 0 and "No findings" in result.stdout, result.stdout + result.stderr


def test_workflow_hardening(example):
    """Read-only token, no credentials left on disk, actions pinned by commit,
    one run per branch, every job bounded in time."""
    ci = workflow(example)
    assert ci["permissions"] == {"contents": "read"}
    assert ci["concurrency"]["cancel-in-progress"] is True and "github.ref" in ci["concurrency"]["group"]
    for name, job in ci["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 30, name
        uses = [step for step in job["steps"] if "uses" in step]
        assert uses, name
        checkouts = [step for step in uses if step["uses"].startswith("actions/checkout@")]
        assert len(checkouts) == 1 and checkouts[0]["with"]["persist-credentials"] is False, name
    # the comments are gone once parsed: the pins are checked on the text
    pins = re.findall(r"uses: (.+)$", (example / WORKFLOW).read_text(), re.M)
    assert len(pins) >= 6 and all(PINNED_ACTION.match(pin) for pin in pins), pins


@pytest.mark.parametrize("pin, pinned", [
    ("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1", True),
    ("actions/checkout@v7.0.1", False),
    ("actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1", False),
    ("actions/checkout@3d3c42e # v7.0.1", False),
    ("actions/checkout@main # v7.0.1", False),
])
def test_the_pin_rule_itself(pin, pinned):
    assert bool(PINNED_ACTION.match(pin)) is pinned


def test_back_job_tests_against_db_dockerfiles_image(versioned_project):
    """The service is the exact image db/Dockerfile builds FROM, for every major offered."""
    job = workflow(versioned_project)["jobs"]["back"]
    assert job["services"]["db"]["image"] == base_images(versioned_project / "db/Dockerfile")[0]
    assert str(answers(versioned_project)["postgres_version"]) in job["name"]


def test_back_job_sets_the_database_up_as_db_does(example):
    """db/init/ in name order with the names the db container gets, then db/'s
    own postgresql.conf and pg_hba.conf on db's port; the backend reaches it by
    the service name, with back/.env.example's settings and, for what compose
    derives from the answers, settings.py's defaults, which are the same."""
    a = answers(example)
    environments = compose.environments(example)
    db_env = environments["db"]
    job = workflow(example)["jobs"]["back"]
    service = job["services"]["db"]
    setup = next(step for step in job["steps"] if "db/init/" in step.get("run", ""))
    for name in ("POSTGRES_USER", "POSTGRES_DB", "APP_DB_USER"):
        assert setup["env"][name] == db_env[name], name
    for name in ("POSTGRES_USER", "POSTGRES_DB"):
        assert service["env"][name] == db_env[name], name
    script = setup["run"]
    for needed in ("db/postgresql.conf", "db/pg_hba.conf", "docker restart", f"--port={a['db_port']}",
                   f"127.0.0.1 {a['db_service']}", "/etc/hosts"):
        assert needed in script, needed
    assert "/etc/postgresql/pg_hba.conf" in (example / "db/postgresql.conf").read_text()
    assert service["ports"] == [f"{a['db_port']}:{a['db_port']}"]
    assert f"--memory {a['db_memory_mb']}m" in service["options"]
    back_env, settings = environments["backend"], next(example.glob("back/*/settings.py")).read_text()
    assert not {"DB_HOST", "DB_PORT", "DB_NAME", "DB_USER"} & set(dotenv.load(example / "back/.env.example"))
    assert back_env["DB_HOST"] == a["db_service"] and f'DB_SERVICE = "{a["db_service"]}"' in settings
    for default in (f'env.int("DB_PORT", {back_env["DB_PORT"]})', f'env.str("DB_NAME", "{back_env["DB_NAME"]}")',
                    f'env.str("DB_USER", "{back_env["DB_USER"]}")'):
        assert default in settings, default
    assert "pytest" in run_lines(example, "back") and ".env.example" in run_lines(example, "back")


def test_workflow_holds_no_secret(example):
    """Passwords and keys are made in the job (openssl rand) and masked;
    none is written in the workflow."""
    text = (example / WORKFLOW).read_text()
    env = {**dotenv.load(example / "db/.env"), **dotenv.load(example / "back/.env")}
    for value in [*secrets_of(example).values(), env["DJANGO_SECRET_KEY"], env["DB_PASSWORD"]]:
        assert value not in text
    assert not re.search(r"(PASSWORD|SECRET_KEY)\w*: ", text), "a password or key set to a literal"
    generated = re.findall(r"^\s*(\w+)=\$\(openssl rand -hex \d+\)$", text, re.M)
    assert set(generated) == {"APP_DB_PASSWORD", "DJANGO_SECRET_KEY"}
    for name in generated:
        assert f'echo "::add-mask::${name}"' in text, name
    assert "${{ secrets." not in text  # no repository secret is needed


def test_jobs_run_the_dockerfiles_runtimes(example):
    """setup-python and setup-node install what the images run."""
    python = base_images(example / "back/Dockerfile")[0]
    node = base_images(example / "front/Dockerfile")[0]
    assert (python, node) == (images.IMAGES["python"], images.IMAGES["node"])  # includes/images.jinja's
    jobs = workflow(example)["jobs"]
    for job, runtime, key in (("back", python, "python-version"), ("lint", python, "python-version"),
                              ("front", node, "node-version")):
        (setup,) = [s for s in jobs[job]["steps"] if "setup-" in s.get("uses", "")]
        assert runtime.split(":")[1].startswith(setup["with"][key] + "-"), (job, runtime)


def test_front_job_runs_check_test_lint_build(example):
    scripts = json.loads((example / "front/package.json").read_text())["scripts"]
    runs = [step["run"].strip() for step in steps(example, "front") if "run" in step]
    # one command a step, but coverage's, which then writes its summary (the next test)
    assert [run for run in runs if "\n" in run] == [run for run in runs if run.startswith("npm run test:coverage\n")]
    ran = [run.splitlines()[0] for run in runs]
    assert ran == ["npm ci", "npm run gen:api && git diff --exit-code -- ./src/lib/api", "npm run check",
                   "npm run test:coverage", "npm run lint", "npm run build"]
    assert {"check", "test", "test:coverage", "lint", "build"} <= set(scripts)
    assert workflow(example)["jobs"]["front"]["defaults"]["run"]["working-directory"] == "front"


def test_front_job_reports_coverage_in_the_run_summary(example):
    """The unit tests with coverage (vitest's thresholds fail the step), then
    the table vite.config.ts writes to coverage/coverage.txt, fenced, in the
    run's summary, as the back job puts pytest-cov's."""
    (step,) = [step for step in steps(example, "front") if "test:coverage" in step.get("run", "")]
    lines = [line.strip() for line in step["run"].splitlines()]
    assert lines[0] == "npm run test:coverage", lines
    assert lines[1:] == ["{", "echo '### Frontend coverage'", "echo '```'", "cat coverage/coverage.txt",
                         "echo '```'", '} >> "$GITHUB_STEP_SUMMARY"'], lines
    scripts = json.loads((example / "front/package.json").read_text())["scripts"]
    assert scripts["test:coverage"] == "vitest run --coverage"
    vite = (example / "front/vite.config.ts").read_text()
    assert "['text', { file: 'coverage.txt' }]" in vite and "reportsDirectory: 'coverage'" in vite
    assert "coverage report --format=markdown >> \"$GITHUB_STEP_SUMMARY\"" in run_lines(example, "back")


def test_lint_job_runs_the_hooks_and_validates_every_compose_file(example):
    lines = run_lines(example, "lint")
    assert "pre-commit run --all-files" in lines
    # every hook but prettier (`npm run lint`, the front job's step) and mypy
    # (it needs the backend's packages: the back job's step)
    (hooks_step,) = [step for step in steps(example, "lint") if "pre-commit run" in step.get("run", "")]
    assert hooks_step["env"] == {"SKIP": "prettier,mypy"}
    assert "npm run lint" in run_lines(example, "front")
    composes = sorted(str(p.relative_to(example)) for p in example.rglob("docker-compose*.yml"))
    assert len(composes) == 4
    for path in composes:
        # An override is checked merged onto the file it overrides.
        base = {"db/docker-compose.prod.yml": "--file db/docker-compose.yml "}.get(path, "")
        assert f"docker compose {base}--file {path} config --quiet" in lines, path
    # compose needs the env files it names; the job makes them from the examples
    for env_file in ("db/.env", "back/.env", "front/.env"):
        assert (example / f"{env_file}.example").exists() and f"{env_file}.example" in lines


def test_stack_job_boots_the_project_as_a_new_clone_does(example):
    """The env files from scripts/env-files (their .env.example, new random
    secrets, masked), exactly the Makefile's targets, then the API's health,
    the frontend's browser journeys (`make e2e`) and no missing migration;
    the logs on failure, `make down` whatever happened. Its run: steps are what a test on a real engine runs literally
    (harness.workflows.run_steps)."""
    a = answers(example)
    backend = f"{a['project_slug']}_backend_dev"
    ran = run_steps(example / WORKFLOW, "stack")
    assert [(step.run.strip(), step.condition) for step in ran] == [
        ("scripts/env-files", None),
        ("make db-up up migrate verify", None),
        (f"health=$(curl -fsS http://127.0.0.1:{a['backend_port']}/api/health/)\n"
         'echo "$health"\n'
         """grep -Eq '"status" *: *"ok"' <<<"$health\"""", None),
        (f"curl -fsS --retry 30 --retry-delay 2 --retry-all-errors http://127.0.0.1:{a['frontend_port']}/healthz", None),
        ("npm ci\n"
         'if [ -z "${PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH:-}" ]; then\n'
         "  npx playwright install --with-deps chromium\n"
         "fi", None),
        ("make e2e", None),
        (f"docker exec {backend} python manage.py makemigrations --check --dry-run", None),
        ("(cd db && docker compose logs --no-color --timestamps)\n"
         "docker compose -f docker-compose.dev.yml logs --no-color --timestamps", "failure()"),
        ("make down", "always()"),
    ]
    assert all(step.env == {} for step in ran)
    assert [step.name for step in ran if step.working_directory] == ["Playwright and its Chromium"]
    assert next(step for step in ran if step.working_directory).working_directory == "front"
    # the targets are the Makefile's, in the README's order
    assert {"db-up", "up", "migrate", "verify", "e2e", "down"} <= set(make.targets(example))
    # its container and port are the project's
    dev = compose.load(example / "docker-compose.dev.yml")["services"]["backend"]
    assert dev["container_name"] == backend and f"127.0.0.1:{a['backend_port']}:{a['backend_port']}" in dev["ports"]
    # the only actions are the checkout and, for the browser journeys, the front
    # job's Node; no service container, no secret, no extra permission
    job = workflow(example)["jobs"]["stack"]
    uses = [step for step in job["steps"] if "uses" in step]
    assert [step["uses"].split("@")[0] for step in uses] == ["actions/checkout", "actions/setup-node"]
    (front_node,) = [s for s in workflow(example)["jobs"]["front"]["steps"] if "setup-node" in s.get("uses", "")]
    assert (uses[1]["uses"], uses[1]["with"]) == (front_node["uses"], front_node["with"])
    assert "services" not in job and "permissions" not in job and "secrets." not in json.dumps(job)
    assert (example / "scripts/env-files").stat().st_mode & 0o111


def test_run_steps_reads_env_working_directory_and_shell(example, tmp_path):
    back = run_steps(example / WORKFLOW, "back")
    setup = next(step for step in back if "db/init/" in step.run)
    assert setup.env["APP_DB_USER"] == answers(example)["db_user"]
    assert setup.env["DB"] == "${{ job.services.db.id }}", "expressions are left as written"
    assert [step.working_directory for step in back if step.name in ("Install", "pytest")] == ["back", "back"]
    front = run_steps(example / WORKFLOW, "front")
    assert front[0] == RunStep(name="npm ci", run="npm ci", env={}, working_directory="front", condition=None,
                               shell=["bash", "-e"])
    # run_step: the script in a file, run by the step's shell in its directory, with its env
    (tmp_path / "sub").mkdir()
    step = RunStep(name="t", run='echo "$PWD $GREETING"\nfalse\necho not reached\n', env={"GREETING": "hi"},
                   working_directory="sub", condition=None, shell=["bash", "-e"])
    result = run_step(step, tmp_path)
    assert (result.returncode, result.stdout) == (1, f"{tmp_path / 'sub'} hi\n")


# ===========================================================================
# .pre-commit-config.yaml
# ===========================================================================
HOOKS = {"check-merge-conflict", "ruff-check", "prettier", "mypy", "shellcheck", "hadolint"}


def test_pre_commit_config_is_valid(example):
    result = subprocess.run(["pre-commit", "validate-config", str(example / ".pre-commit-config.yaml")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_pre_commit_runs_the_agreed_hooks_at_release_tags(example):
    config = yaml.safe_load((example / ".pre-commit-config.yaml").read_text())
    hooks = {hook["id"]: (repo, hook) for repo in config["repos"] for hook in repo["hooks"]}
    assert set(hooks) == HOOKS
    for hook_id, (repo, hook) in hooks.items():
        if repo["repo"] != "local":
            assert re.fullmatch(r"v\d+\.\d+\.\d+(\.\d+)?", repo["rev"]), repo
        elif hook["language"] == "python":  # pinned by the package it installs
            assert all(re.fullmatch(r"[\w-]+==[\d.]+", dep) for dep in hook["additional_dependencies"]), hook
        elif hook_id == "mypy":  # back/'s own, pinned by its requirements-dev.txt (test_quality.py)
            assert hook["language"] == "system" and "mypy" not in (example / "back/requirements.txt").read_text()
        else:  # prettier: front/'s own, pinned by its package-lock.json
            assert hook_id == "prettier" and hook["entry"] == "npm --prefix front run lint", hook
    assert "--assume-in-merge" in hook_args(example, "check-merge-conflict")
    scripts = json.loads((example / "front/package.json").read_text())["scripts"]
    assert scripts["lint"].startswith("prettier --check . ")
    # ruff: the release the template's tests check back/ with
    ruff = subprocess.run(["ruff", "--version"], capture_output=True, text=True).stdout.split()[-1]
    assert hooks["ruff-check"][0]["rev"] == f"v{ruff}"


def test_ruff_passes_on_back(example):
    result = subprocess.run(["ruff", "check", "--no-cache", "back"], cwd=example, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (example / "back/ruff.toml").exists()


CONFLICT = "<<<<<<< before updating\n{old}\n=======\n{new}\n>>>>>>> after updating\n"


def test_merge_conflict_hook_catches_what_an_update_leaves(giga_project, tmp_path):
    """The hook's own entry point (pre-commit-hooks, from PyPI) with the
    config's arguments, on a git checkout, outside any merge: clean, then
    with conflict markers planted in several kinds of file."""
    project = git_project(giga_project, tmp_path / "p")

    def hook() -> subprocess.CompletedProcess:
        files = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True).stdout.split()
        return subprocess.run(["check-merge-conflict", *hook_args(project, "check-merge-conflict"), *files],
                              cwd=project, capture_output=True, text=True)

    assert hook().returncode == 0, hook().stdout
    planted = ["db/postgresql.conf", "back/giga/settings.py", "front/src/routes/+page.svelte", "Makefile"]
    for path in planted:
        with (project / path).open("a") as file:
            file.write(CONFLICT.format(old="a = 1", new="a = 2"))
    result = hook()
    assert result.returncode == 1
    assert {line.split(":")[0] for line in result.stdout.splitlines()} == set(planted), result.stdout
    # without --assume-in-merge the same markers pass unnoticed outside a merge
    files = subprocess.run(["git", "ls-files"], cwd=project, capture_output=True, text=True).stdout.split()
    assert subprocess.run(["check-merge-conflict", *files], cwd=project).returncode == 0


# ===========================================================================
# .gitattributes, .editorconfig
# ===========================================================================
def executables(project: Path) -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-s"], cwd=project, capture_output=True, text=True, check=True)
    return [line.split("\t")[1] for line in listed.stdout.splitlines() if line.startswith("100755")]


def test_every_file_run_in_a_container_is_lf(example, tmp_path):
    project = git_project(example, tmp_path / "p")
    run_in_container = executables(project)
    assert {"back/docker-entrypoint.sh", "db/init/10-app-role.sh", "db/bin/backup"} <= set(run_in_container)
    run_in_container += [str(p.relative_to(project)) for p in project_files(project)
                         if p.match("db/init/*") or p.suffix == ".conf" or p.name in {"Makefile", "Dockerfile"}]
    attributes = subprocess.run(["git", "check-attr", "eol", "--", *run_in_container], cwd=project,
                                capture_output=True, text=True, check=True).stdout.splitlines()
    assert attributes == [f"{path}: eol: lf" for path in run_in_container]


def test_a_windows_checkout_keeps_them_lf(example, tmp_path):
    """A clone with core.autocrlf=true (git for Windows' default) writes no CR."""
    origin = git_project(example, tmp_path / "origin")
    clone = tmp_path / "clone"
    subprocess.run(["git", "-c", "core.autocrlf=true", "clone", "-q", str(origin), str(clone)], check=True)
    checked = [clone / path for path in executables(origin)] + [clone / "db/postgresql.conf", clone / "Makefile"]
    assert [p for p in checked if b"\r" in p.read_bytes()] == []
    # the check itself: without .gitattributes, the same clone gets CRLF
    (origin / ".gitattributes").unlink()
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "no attributes"],
                   cwd=origin, check=True)
    bare = tmp_path / "bare"
    subprocess.run(["git", "-c", "core.autocrlf=true", "clone", "-q", str(origin), str(bare)], check=True)
    assert b"\r\n" in (bare / "back/docker-entrypoint.sh").read_bytes()


def test_editorconfig_agrees_with_the_linters(example):
    text = (example / ".editorconfig").read_text()
    assert text.count("root = true") == 1 and "end_of_line = lf" in text
    front = re.search(r"^\[front/\*\*\]\n((?:[^\[\n].*\n)+)", text, re.M).group(1)
    assert "indent_style = tab" in front  # prettier.config.js: useTabs
    assert "useTabs: true" in (example / "front/prettier.config.js").read_text()
    assert re.search(r"^\[Makefile\]\nindent_style = tab$", text, re.M)


# ===========================================================================
# scripts/smoke: the template's own CI, for every example
# ===========================================================================
# Not giga: each of its steps is a test of its own on giga, which shares the
# renders and servers of the rest of the suite (test_rendering: compose schema,
# hadolint, shellcheck; test_ci: ruff; test_quality: mypy; test_back_suite: pytest
# --cov; test_front: npm check, test, lint, build). A whole second run cost 7 minutes.
SMOKED = [path for path in EXAMPLES if path.stem != "giga"]


@pytest.mark.full
@pytest.mark.parametrize("answers_file", SMOKED, ids=lambda p: p.stem)
def test_smoke_passes_for_the_example(answers_file, tmp_path, capsys):
    assert smoke([str(answers_file), str(tmp_path / answers_file.stem)]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    for step in ("lint: ok", "back: mypy, pytest --cov against PostgreSQL: ok", "front: check, test, lint, build: ok"):
        assert step in out, out


def test_smoke_is_documented_and_runs_scripts_bootstrap():
    # documented in docs/testing.md, which the README's front door links to
    testing = (REPO / "docs/testing.md").read_text()
    assert re.search(r"^## Smoke-testing a rendered project$", testing, re.M)
    assert "scripts/smoke examples/giga.yml" in testing
    assert "](docs/testing.md#smoke-testing-a-rendered-project)" in (REPO / "README.md").read_text()
    wrapper = (REPO / "scripts/smoke").read_text()
    assert "scripts/bootstrap" in wrapper and "harness.smoke" in wrapper
    assert shell_scripts(REPO / "scripts") and (REPO / "scripts/smoke").stat().st_mode & 0o111
