"""Benchmark: `copier copy --defaults` of the whole template vs. Copier's floor.

All are copied from a clean git clone, with the same copier, in the same run:
  * this template (HEAD of the repository, cloned fresh);
  * the floor: a git repository holding a one-file template;
  * the same tree, emptied: every path of this template's output, as an empty
    plain file. It shows what Copier charges per file and directory whatever
    the files hold (it renders each path segment, and runs git per file).
Reports the median (and min/max) wall time of N runs of each, and the ratios.

Usage: .venv/bin/python -m tests.benchmarks.bench_copy [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.render import REPO

COPIER = [sys.executable, "-m", "copier"]


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def one_file_template(root: Path) -> Path:
    template = root / "floor"
    template.mkdir()
    (template / "copier.yml").write_text("name:\n  type: str\n  default: world\n")
    (template / "hello.txt.jinja").write_text("Hello {{ name }}\n")
    git("init", "-q", cwd=template)
    git("add", "-A", cwd=template)
    git("-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "floor", cwd=template)
    return template


def same_tree_emptied(root: Path, clone: Path) -> Path:
    template = root / "same-tree"
    (template / "template").mkdir(parents=True)
    (template / "copier.yml").write_text("_subdirectory: template\n")
    for source in (clone / "template").rglob("*"):
        if source.is_file():
            relative = source.relative_to(clone / "template").as_posix()
            relative = relative.replace("{{ project_slug }}", "pkg").replace("{{_copier_conf.answers_file}}", "answers")
            target = template / "template" / relative.removesuffix(".jinja")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
    git("init", "-q", cwd=template)
    git("add", "-A", cwd=template)
    git("-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "same tree", cwd=template)
    return template


def clean_clone(root: Path) -> Path:
    clone = root / "template"
    git("clone", "-q", str(REPO), str(clone), cwd=root)
    return clone


def time_copy(template: Path, destination: Path) -> float:
    start = time.perf_counter()
    subprocess.run([*COPIER, "copy", "--defaults", "--quiet", str(template), str(destination)],
                   check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(template: Path, root: Path, runs: int, label: str) -> list[float]:
    time_copy(template, root / f"{label}-warmup")  # first run pays for imports from a cold cache
    return [time_copy(template, root / f"{label}-{i}") for i in range(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clone = clean_clone(root)
        results = {
            "one-file floor": measure(one_file_template(root), root, args.runs, "floor"),
            "same tree, emptied": measure(same_tree_emptied(root, clone), root, args.runs, "tree"),
            "this template": measure(clone, root, args.runs, "full"),
        }
    medians = {label: statistics.median(times) for label, times in results.items()}
    for label, times in results.items():
        print(f"{label:19} median {medians[label]:.3f}s  min {min(times):.3f}s  max {max(times):.3f}s  "
              f"({len(times)} runs)  {medians[label] / medians['one-file floor']:.2f}x the floor")
    print(f"this template / same tree emptied: {medians['this template'] / medians['same tree, emptied']:.2f}x")


if __name__ == "__main__":
    main()
