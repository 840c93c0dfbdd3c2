"""The Python the backend runs on: an interpreter Django supports, and a
virtualenv with the rendered requirements, cached by their contents."""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from .locks import build_once

VENV_CACHE = Path(os.environ.get("BACKEND_VENV_CACHE", "/var/tmp/isolated-db-template/back-venvs"))


def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    if out.returncode != 0:
        return None
    major, minor = map(int, out.stdout.split())
    return major, minor


def find_python(minimum: tuple[int, int] = (3, 12)) -> str:
    """An interpreter Django 6.1 runs on: $BACKEND_PYTHON, else the newest
    3.12+ found on PATH or in pyenv's versions."""
    candidates = [os.environ.get("BACKEND_PYTHON", "")]
    candidates += [shutil.which(f"python3.{minor}") or "" for minor in (14, 13, 12)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")), reverse=True)
    candidates += ["/usr/local/bin/python3", "/usr/bin/python3"]
    for candidate in filter(None, candidates):
        version = _version(candidate)
        if version and version >= minimum:
            return candidate
    raise RuntimeError(f"no Python >= {minimum[0]}.{minimum[1]} found; set BACKEND_PYTHON")


def venv_for(back: Path, extra: tuple[str, ...] = ()) -> Path:
    """A virtualenv with back/requirements-dev.txt (and `extra` requirement
    specifiers) installed; reused while all of them are the same."""
    requirements = [back / "requirements.txt", back / "requirements-dev.txt"]
    python = find_python()
    digest = hashlib.sha256()
    digest.update((python + str(_version(python))).encode())
    for path in requirements:
        digest.update(path.read_bytes())
    digest.update(repr(sorted(extra)).encode())
    venv = VENV_CACHE / digest.hexdigest()[:16]
    marker = venv / ".installed"
    build_once(venv, marker.exists, lambda: _install(venv, back, python, extra))
    return venv


def _install(venv: Path, back: Path, python: str, extra: tuple[str, ...]) -> None:
    shutil.rmtree(venv, ignore_errors=True)
    venv.parent.mkdir(parents=True, exist_ok=True)
    uv = shutil.which("uv")
    env = {**os.environ, "UV_SYSTEM_CERTS": "1", "UV_PYTHON_DOWNLOADS": "never"}
    if uv:
        subprocess.run([uv, "venv", "--quiet", "--python", python, str(venv)], check=True, env=env)
        subprocess.run([uv, "pip", "install", "--quiet", "--python", str(venv / "bin/python"),
                        "-r", str(back / "requirements-dev.txt"), *extra], check=True, env=env, cwd=back)
    else:
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/python"), "-m", "pip", "install", "--quiet",
                        "-r", str(back / "requirements-dev.txt"), *extra], check=True, cwd=back)
    subprocess.run(["chmod", "-R", "a+rX", str(venv)], check=True)
    (venv / ".installed").write_text(python + "\n")
