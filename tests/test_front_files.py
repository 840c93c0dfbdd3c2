"""front/: the SvelteKit app that talks only to the API, as rendered (quick
tier, every example): it agrees with the answers and the dev compose, its
image runs as a non-root user on an exact base image, it is plain Svelte,
and its e2e journeys target the dev stack by default.
"""

from __future__ import annotations

import json
import re

import yaml

from harness.answers import alias, recorded
from harness import compose, dotenv
from harness.dockerfile import base_images, named_stages


def aliases(service: dict) -> set[str]:
    """The service's names on all the networks it joins."""
    return {name for network in (service.get("networks") or {}).values() for name in (network or {}).get("aliases", [])}


# ---------------------------------------------------------------------------
# Quick tier: the rendered files, for every example
# ---------------------------------------------------------------------------
def test_front_env_points_at_the_backend_alias(example):
    project, a = example, recorded(example)
    services = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]
    assert alias(a, "backend") in aliases(services["backend"])
    # in Docker: what compose gives the container
    container = compose.service_environment(project, "docker-compose.dev.yml", "frontend")
    # outside Docker (npm run dev, node build): .env.example, the API on its published port
    outside = dotenv.load(project / "front/.env.example")
    for env, api_host in ((container, alias(a, "backend")), (outside, "localhost")):
        assert env["INTERNAL_API_URL"] == f"http://{api_host}:{a['backend_port']}", env
        assert env["PORT"] == str(a["frontend_port"])
        assert env["ORIGIN"] == f"http://localhost:{a['frontend_port']}"
        assert env["PUBLIC_PROJECT_NAME"] == a["project_name"]


def test_front_dev_server_answers_on_the_published_port_and_alias(example):
    project, a = example, recorded(example)
    port = a["frontend_port"]
    frontend = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]["frontend"]
    assert frontend["build"] == {"context": "./front", "target": "dev"}
    assert frontend["env_file"] == "front/.env"
    assert alias(a, "frontend") in aliases(frontend)
    # the image's own node_modules, renewed with it (make up: --renew-anon-volumes)
    assert {"/app/node_modules", "/app/.svelte-kit"} <= set(frontend["volumes"])

    vite = (project / "front/vite.config.ts").read_text()
    assert f"port: {port}," in vite
    hosts = re.search(r"allowedHosts: \[([^\]]*)\]", vite).group(1)
    assert {"localhost", alias(a, "frontend")} <= set(re.findall(r"'([^']+)'", hosts))

    dockerfile = (project / "front/Dockerfile").read_text()
    assert f'"--host", "0.0.0.0", "--port", "{port}"' in dockerfile
    assert f"EXPOSE {port}" in dockerfile
    assert re.search(r"^FROM base AS dev$", dockerfile, re.M)
    assert dockerfile.rstrip().endswith('CMD ["node", "build"]')


def test_front_image_is_built_from_an_exact_release(example):
    """`node:24-slim` moves to another Node release and another Debian under the team."""
    project = example
    images = base_images(project / "front/Dockerfile")
    assert images, "no external base image"
    for image in images:
        assert re.fullmatch(r"node:\d+\.\d+\.\d+-(bookworm|trixie)-slim", image), image


def test_front_image_stages_that_run_a_server_are_not_root(example):
    """Both images that run code (dev: vite dev; production: node build) run as
    the node user (uid 1000); in dev it also owns node_modules, so that the
    named volume Docker seeds from the image stays writable by it."""
    project = example
    stages = {name: stage.instructions for name, stage in named_stages(project / "front/Dockerfile").items()}
    running = {name: steps for name, steps in stages.items() if any(k == "CMD" for k, _ in steps)}
    assert set(running) == {"dev", "production"}, running.keys()
    for name, steps in running.items():
        users = [rest for keyword, rest in steps if keyword == "USER"]
        assert users and users[-1] == "1000:1000", f"{name} runs as {users[-1] if users else 'root'}"
        user_at = max(i for i, (keyword, _) in enumerate(steps) if keyword == "USER")
        assert user_at < next(i for i, (keyword, _) in enumerate(steps) if keyword == "CMD"), name
    dev = stages["dev"]
    user_at = next(i for i, (keyword, _) in enumerate(dev) if keyword == "USER")
    install_at = next(i for i, (keyword, rest) in enumerate(dev) if keyword == "RUN" and "npm ci" in rest)
    assert user_at < install_at, "node_modules must be created by the user that runs vite"
    assert any(keyword == "RUN" and re.search(r"chown (-R )?1000:1000 /app$", rest) for keyword, rest in dev[:user_at]), \
        "npm ci writes node_modules into /app, vite .svelte-kit/"
    copies = [rest for keyword, rest in dev if keyword == "COPY"]
    assert copies and all(rest.startswith("--chown=1000:1000 ") for rest in copies), copies


def test_front_holds_no_jinja_and_only_plain_svelte(example):
    project = example
    front = project / "front"
    files = [p for p in front.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".jinja"]
    # Nothing rendered leaves a Jinja statement behind in the config files.
    for name in ("vite.config.ts", "playwright.config.ts", ".env", ".env.example", "Dockerfile", "package.json"):
        text = (front / name).read_text()
        assert not re.search(r"\{\{|\}\}|\{%|%\}", text), name
    assert json.loads((front / "package.json").read_text())["name"] == "frontend"
    assert json.loads((front / "package-lock.json").read_text())["name"] == "frontend"


def test_front_e2e_journeys_target_the_dev_stack_by_default(example):
    """front/e2e, the project's own Playwright journeys (`make e2e`): by
    default against the dev stack's published frontend and Mailpit's API,
    both replaceable by a variable; Debian's Chromium when named, else
    Playwright's; the project's verification answer; out of vitest's way."""
    project, a = example, recorded(example)
    front = project / "front"
    package = json.loads((front / "package.json").read_text())
    assert package["scripts"]["test:e2e"] == "playwright test"
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["devDependencies"]["@playwright/test"])
    config = (front / "playwright.config.ts").read_text()
    assert "testDir: 'e2e'" in config
    assert f"baseURL: process.env.E2E_BASE_URL || 'http://127.0.0.1:{a['frontend_port']}'," in config
    assert f"mailpitURL: process.env.E2E_MAILPIT_URL || 'http://127.0.0.1:{a['mail_ui_port']}'," in config
    assert f"emailVerification: '{a['email_verification']}'," in config
    assert "const chromium = process.env.PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH;" in config
    assert "launchOptions: chromium ? { executablePath: chromium } : {}," in config
    services = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]
    assert f"127.0.0.1:{a['frontend_port']}:{a['frontend_port']}" in services["frontend"]["ports"]
    assert f"127.0.0.1:{a['mail_ui_port']}:8025" in services["mailpit"]["ports"]
    specs = sorted(p.name for p in (front / "e2e").glob("*.spec.ts"))
    # the journey of a later verification only where the answer has one
    optional = ["verification.spec.ts"] if a["email_verification"] == "optional" else []
    assert specs == sorted(["accounts.spec.ts", "email-change.spec.ts", "password-reset.spec.ts", *optional]), specs
    assert "test.skip" not in "".join(p.read_text() for p in (front / "e2e").glob("*.ts")), "nothing dead"
    journeys = (front / "e2e/accounts.spec.ts").read_text()
    assert "mail.link(user.email, '/verify/')" in journeys and "logOut(page)" in journeys
    # vitest runs src/ only; svelte-check type-checks e2e/ too
    vite = (front / "vite.config.ts").read_text()
    assert "include: ['src/**/*.{test,spec}.{js,ts}']" in vite
    assert "config.include.push('../e2e/**/*.ts', '../playwright.config.ts');" in vite
    assert {"/test-results", "/playwright-report"} <= set((front / ".gitignore").read_text().splitlines())
