"""Client JavaScript the home page loads: the rendered front/ vs. the sv skeleton.

Both apps are built the same way (same package.json, lockfile and
vite.config.ts, `npm ci && npm run build`), so the only difference is src/:
the template's pages, or the `sv create --template minimal` skeleton's
(embedded below, as sv 0.17.1 writes them). Each build is started with
`node build`, its home page fetched over HTTP, and every JavaScript file the
page loads is counted: the modulepreloads SvelteKit lists (in the `link`
response header, or <link> tags), the `import()`s of the inline start script,
and whatever those files import statically. Sizes are gzip level 9, per file.

    .venv/bin/python -m tests.benchmarks.bench_front_bundle               # render examples/giga.yml from HEAD
    .venv/bin/python -m tests.benchmarks.bench_front_bundle --front DIR   # an already rendered front/
    .venv/bin/python -m tests.benchmarks.bench_front_bundle --json        # machine-readable

Exits 1 if the ratio exceeds --max-ratio (1.5).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from harness.net import answering, free_port, serving
from harness.render import render_example


# `npx sv@0.17.1 create --template minimal --types ts`: the files of src/ that
# make the home page (src/lib/assets/favicon.svg is copied from the front).
SKELETON = {
    "src/app.d.ts": """// See https://svelte.dev/docs/kit/types#app.d.ts
// for information about these interfaces
declare global {
\tnamespace App {
\t\t// interface Error {}
\t\t// interface Locals {}
\t\t// interface PageData {}
\t\t// interface PageState {}
\t\t// interface Platform {}
\t}
}

export {};
""",
    "src/app.html": """<!doctype html>
<html lang="en">
\t<head>
\t\t<meta charset="utf-8" />
\t\t<meta name="viewport" content="width=device-width, initial-scale=1" />
\t\t<meta name="text-scale" content="scale" />
\t\t%sveltekit.head%
\t</head>
\t<body data-sveltekit-preload-data="hover">
\t\t<div style="display: contents">%sveltekit.body%</div>
\t</body>
</html>
""",
    "src/routes/+layout.svelte": """<script lang="ts">
\timport favicon from '$lib/assets/favicon.svg';

\tlet { children } = $props();
</script>

<svelte:head>
\t<link rel="icon" href={favicon} />
</svelte:head>

{@render children()}
""",
    "src/routes/+page.svelte": """<h1>Welcome to SvelteKit</h1>
<p>Visit <a href="https://svelte.dev/docs/kit">svelte.dev/docs/kit</a> to read the documentation</p>
""",
}
SHARED = ["package.json", "package-lock.json", "vite.config.ts", "tsconfig.json", ".npmrc",
          "src/lib/assets/favicon.svg"]


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], cwd: Path, timeout: float = 900) -> None:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, env={**os.environ, "CI": "true"})
    if result.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")


def make_skeleton(front: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SHARED:
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(front / name, dest / name)
    for name, text in SKELETON.items():
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        (dest / name).write_text(text)
    return dest


def build(app: Path) -> None:
    if not (app / "node_modules").is_dir():
        log(f"npm ci in {app}")
        run(["npm", "ci", "--no-audit", "--no-fund"], cwd=app)
    log(f"npm run build in {app}")
    run(["npm", "run", "build"], cwd=app)


def fetch(url: str) -> tuple[bytes, str]:
    """The body and the `link` header of a GET."""
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers.get("link", "")


def home_page_js(app: Path) -> dict[str, bytes]:
    """{path: bytes} of every JS file the home page of `node build` loads."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1",
           "ORIGIN": f"http://localhost:{port}",
           # Nothing listens there: the home page renders its "API down" state,
           # which loads the same JavaScript as any other.
           "INTERNAL_API_URL": f"http://127.0.0.1:{free_port()}"}
    base = f"http://127.0.0.1:{port}"
    with serving(["node", "build"], cwd=app, env=env, ready=answering(base + "/"), timeout=30, name="node-build"):
        body, link = fetch(base + "/")
        html = body.decode()
        # SvelteKit lists the page's modules (entry, layout and page nodes, their
        # chunks) as modulepreload in the `link` header, or in <link> tags.
        queue = re.findall(r'<([^>]+)>;\s*rel="modulepreload"', link)
        queue += re.findall(r'<link[^>]+rel="modulepreload"[^>]+href="([^"]+)"', html)
        queue += re.findall(r'import\("([^"]+\.js)"\)', html)
        files: dict[str, bytes] = {}
        while queue:
            path = urllib.parse.urljoin("/", queue.pop())
            if path in files:
                continue
            files[path] = body = fetch(base + path)[0]
            # Static imports (`import"./x.js"`, `from"./x.js"`). Not import():
            # app.js imports every page's node that way, on navigation only.
            for spec in re.findall(rb'(?:\bimport|\bfrom)\s*["\']([^"\']+\.js)["\']', body):
                queue.append(urllib.parse.urljoin(path, spec.decode()))
        return files


def measure(app: Path) -> dict:
    files = home_page_js(app)
    gz = {path: len(gzip.compress(body, compresslevel=9, mtime=0)) for path, body in files.items()}
    return {
        "files": len(files),
        "raw_bytes": sum(len(b) for b in files.values()),
        "gzip_bytes": sum(gz.values()),
        "per_file_gzip": dict(sorted(gz.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--front", type=Path, help="a rendered front/ (default: render giga from HEAD)")
    parser.add_argument("--max-ratio", type=float, default=1.5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-front-"))
    try:
        if args.front:
            front = work / "front"
            shutil.copytree(args.front, front, ignore=shutil.ignore_patterns(
                "node_modules", "build", ".svelte-kit"))
        else:
            log("rendering examples/giga.yml")
            front = render_example("giga", work / "project") / "front"
        skeleton = make_skeleton(front, work / "skeleton")
        build(front)
        build(skeleton)
        result = {"front": measure(front), "skeleton": measure(skeleton)}
        result["ratio"] = round(result["front"]["gzip_bytes"] / result["skeleton"]["gzip_bytes"], 3)
        result["max_ratio"] = args.max_ratio
        result["node"] = subprocess.run(["node", "--version"], capture_output=True,
                                        text=True).stdout.strip()
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            for name in ("skeleton", "front"):
                r = result[name]
                print(f"{name:9} {r['files']:3} JS files  {r['raw_bytes'] / 1000:7.2f} kB raw"
                      f"  {r['gzip_bytes'] / 1000:6.2f} kB gzip")
            print(f"ratio     {result['ratio']:.3f} (limit {args.max_ratio})")
        return 0 if result["ratio"] <= args.max_ratio else 1
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
