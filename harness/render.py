"""Rendering the template, through the API (pytest-copie) and the CLI."""

from __future__ import annotations

import contextlib
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "examples").glob("*.yml"))


def example_answers(name: str) -> dict:
    return yaml.safe_load((REPO / "examples" / f"{name}.yml").read_text())


def copier_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`copier ...` as a user types it: no --trust, no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *args],
        capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=300,
    )


def data_args(answers: dict) -> list[str]:
    return [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]


def project_files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts)


def render_example(name: str, destination: Path, extra: dict | None = None) -> Path:
    """examples/<name>.yml (and `extra` answers) rendered through the CLI,
    from HEAD plus uncommitted changes."""
    answers = {**example_answers(name), **(extra or {})}
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(answers),
                        str(REPO), str(destination))
    if result.returncode != 0:
        raise RuntimeError(f"copier failed:\n{result.stderr}")
    return destination


# ---------------------------------------------------------------------------
# examples/<name>/: the committed render of examples/<name>.yml
# ---------------------------------------------------------------------------
# Fixed in place of the generated secrets, so that the render is reproducible;
# long enough for the secret validators (SECRET_KEY: 50 characters).
SECRET_QUESTIONS = tuple(question for question, spec in yaml.safe_load((REPO / "copier.yml").read_text()).items()
                         if isinstance(spec, dict) and spec.get("secret"))
PLACEHOLDER_SECRETS = {question: f"example-only-not-a-secret-{question.replace('_', '-')}".ljust(50, "0")
                       for question in SECRET_QUESTIONS}
# The answers file's lines that say where and from which commit it was
# rendered: another checkout, or any commit, would change them.
RENDER_SPECIFIC = {"_commit": "<the template's commit>", "_src_path": "<the template>"}
REFRESH_COMMAND = "scripts/render-examples"


def render_reference(name: str, destination: Path) -> Path:
    """examples/<name>.yml rendered as examples/<name>/ holds it: placeholder
    secrets, and the answers file's render-specific lines normalised."""
    render_example(name, destination, PLACEHOLDER_SECRETS)
    answers = destination / ".copier-answers.yml"
    answers.write_text("".join(
        f"{key}: {RENDER_SPECIFIC[key]}\n" if (key := line.partition(":")[0]) in RENDER_SPECIFIC else line
        for line in answers.read_text().splitlines(keepends=True)))
    return destination


def tree_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}


def tree_differences(expected: Path, actual: Path, shown: int = 5) -> list[str]:
    """What differs from `expected` in `actual`: files added or removed, and
    for changed files (content or executable bit) a unified diff of the first
    `shown` of them."""
    old, new = tree_files(expected), tree_files(actual)
    differences = [f"only in the render: {name}" for name in sorted(new.keys() - old.keys())]
    differences += [f"not in the render: {name}" for name in sorted(old.keys() - new.keys())]
    diffs = 0
    for name in sorted(old.keys() & new.keys()):
        before, after = old[name], new[name]
        if os.access(before, os.X_OK) != os.access(after, os.X_OK):
            differences.append(f"executable bit differs: {name}")
        if before.read_bytes() == after.read_bytes():
            continue
        if diffs >= shown:
            differences.append(f"content differs: {name}")
            continue
        diffs += 1
        lines = difflib.unified_diff(before.read_text(errors="replace").splitlines(keepends=True),
                                     after.read_text(errors="replace").splitlines(keepends=True),
                                     f"committed/{name}", f"rendered/{name}")
        differences.append("".join(lines))
    return differences


def refresh_reference(name: str) -> Path:
    """Replace examples/<name>/ with a fresh render of examples/<name>.yml."""
    target = REPO / "examples" / name
    with tempfile.TemporaryDirectory() as scratch:
        rendered = render_reference(name, Path(scratch) / name)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(rendered, target)
    return target


# ---------------------------------------------------------------------------
# In-process rendering, for tests that render hundreds of answer sets
# ---------------------------------------------------------------------------
def template_copy(destination: Path, *, jinja_only: bool) -> Path:
    """The template as plain files (no git, so Copier does not clone it per
    render). With `jinja_only`, template/ keeps only the *.jinja files: the
    others are copied verbatim by Copier and hold no answer."""
    destination.mkdir(parents=True)
    shutil.copy(REPO / "copier.yml", destination)
    shutil.copytree(REPO / "includes", destination / "includes")
    for path in (REPO / "template").rglob("*"):
        # the env files too: compose reads them (harness.compose.service_environment)
        if path.is_file() and (path.suffix == ".jinja" or path.name == ".env" or not jinja_only):
            target = destination / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination


# Copier builds a new Jinja environment for every copy, so each one compiles
# the same few hundred templates (files, paths, defaults, validators) again:
# more than half of a copy's time. Compiling is a pure function of the source
# and the environment's syntax options, so copies in this process share it.
_COMPILED: dict[tuple, object] = {}


@contextlib.contextmanager
def _shared_compilation():
    import jinja2
    compile_ = jinja2.Environment.compile

    def compile_once(env, source, name=None, filename=None, raw=False, defer_init=False):
        if not isinstance(source, str):  # an already parsed template
            return compile_(env, source, name, filename, raw, defer_init)
        key = (source, name, filename, raw, defer_init, env.block_start_string, env.block_end_string,
               env.variable_start_string, env.variable_end_string, env.comment_start_string,
               env.comment_end_string, env.line_statement_prefix, env.line_comment_prefix, env.trim_blocks,
               env.lstrip_blocks, env.newline_sequence, env.keep_trailing_newline, tuple(sorted(env.extensions)),
               env.is_async, env.optimized, repr(env.autoescape))
        if key not in _COMPILED:
            _COMPILED[key] = compile_(env, source, name, filename, raw, defer_init)
        return _COMPILED[key]

    jinja2.Environment.compile = compile_once
    try:
        yield
    finally:
        jinja2.Environment.compile = compile_


def copy_in_process(template: Path, answers: dict, destination: Path) -> str | None:
    """`copier copy --defaults` with `answers`, in this process. Returns None
    when rendered, else the message Copier refuses the answers with."""
    from copier import run_copy
    with warnings.catch_warnings(), _shared_compilation():
        warnings.simplefilter("ignore")
        try:
            run_copy(str(template), str(destination), data=answers, defaults=True, quiet=True, unsafe=False)
        except ValueError as error:  # Copier's "Validation error for question ..." and "Invalid choice ..."
            return str(error)
    return None


def validator(template: Path, question: str, field: str = "validator"):
    """validator(answers) -> the message copier.yml's validator of `question`
    prints for `answers` ('' when accepted), in Copier's own Jinja
    environment: for checking thousands of values quickly. `field="default"`:
    the question's default instead."""
    from copier._main import Worker
    source = yaml.safe_load((template / "copier.yml").read_text())[question][field]
    compiled = Worker(src_path=str(template), dst_path=str(template / "unused")).jinja_env.from_string(source)
    # as on `copier copy`: no recorded answers yet (copier.yml's _external_data)
    return lambda answers: compiled.render(**{"_external_data": {"previous": {}}, **answers}).strip()
