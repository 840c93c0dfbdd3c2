"""Read env files the way Docker Compose's `env_file:` does.

A port of compose-go v2's dotenv parser (dotenv/parser.go, v2.13): the native
tiers run without compose, and the rendered env files must mean to them
exactly what they mean to `docker compose`. python-dotenv differs
on escapes and `$`, so it would prove nothing.

Interpolation references to other variables are resolved from the file itself
only; the rendered files never use them (every `$` is written `$$`).
"""

from __future__ import annotations

import re
from pathlib import Path

_ESCAPE_SEQ = re.compile(r'\\(?:[abcfnrtv$"\\]|0\d{0,3})')
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"',
}
# `$$` is a literal dollar; `${NAME}`/`${NAME:-default}`/`$NAME` interpolate.
_INTERPOLATION = re.compile(r"\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_KEY_PUNCTUATION = set("_.-[]")
_SPACES = "\t\v\f\r \x85\xa0"


class DotenvError(ValueError):
    """The file is not a valid compose env file."""


def load(path: str | Path) -> dict[str, str]:
    return parse(Path(path).read_text(encoding="utf-8"))


def parse(text: str) -> dict[str, str]:
    env: dict[str, str] = {}
    rest = text
    while (rest := _statement_start(rest)):
        key, rest, inherited = _key(rest)
        if inherited:
            continue  # `KEY` alone takes the value from the caller's environment
        value, rest = _value(rest, env)
        env[key] = value
    return env


def _statement_start(src: str) -> str:
    while True:
        src = src.lstrip()
        if not src.startswith("#"):
            return src
        _, _, src = src.partition("\n")


def _key(src: str) -> tuple[str, str, bool]:
    if re.match(r"export\s+", src):
        src = src[len("export"):].lstrip(_SPACES)
    for i, char in enumerate(src):
        if char in _SPACES:
            continue
        if char in "=:\n":
            key = src[:i].rstrip()
            if " " in key:
                raise DotenvError(f"key cannot contain a space: {key!r}")
            return key, src[i + 1:].lstrip(_SPACES), char == "\n"
        if not (char.isalnum() or char in _KEY_PUNCTUATION):
            raise DotenvError(f"unexpected character {char!r} in variable name {src.splitlines()[0]!r}")
    raise DotenvError(f"no value for {src.strip()!r}")


def _value(src: str, env: dict[str, str]) -> tuple[str, str]:
    quote = src[:1]
    if quote not in ("'", '"'):
        line, _, rest = src.partition("\n")
        line = line.split(" #", 1)[0].rstrip()
        return _interpolate(line, env), rest
    chars: list[str] = []
    escaped = False
    for i, char in enumerate(src[1:], start=1):
        if escaped:
            escaped = False
            if char != quote:
                chars.append("\\")  # only the quote itself loses its backslash here
            chars.append(char)
        elif char == "\\":
            escaped = True
        elif char == quote:
            raw = "".join(chars)
            value = _interpolate(_expand_escapes(raw), env) if quote == '"' else raw
            return value, src[i + 1:]
        else:
            chars.append(char)
    raise DotenvError(f"unterminated quoted value {src.splitlines()[0]}")


def _expand_escapes(raw: str) -> str:
    def unescape(match: re.Match[str]) -> str:
        seq = match.group(0)
        if seq == "\\$":
            return "$$"
        if seq.startswith("\\0"):
            # Go's UnquoteChar after compose rewrites `\0ooo` to `\ooo`:
            # exactly three octal digits, or the sequence stays as written.
            octal = seq[2:]
            return chr(int(octal, 8)) if re.fullmatch(r"[0-7]{3}", octal) else seq
        return _SIMPLE_ESCAPES[seq[1]]

    return _ESCAPE_SEQ.sub(unescape, raw)


def _interpolate(value: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(1):
            return "$"
        expression = match.group(2) if match.group(2) is not None else match.group(3)
        name, _, default = re.fullmatch(r"(\w+)(:?-)?(.*)", expression).groups()
        return env.get(name, default or "")

    return _INTERPOLATION.sub(substitute, value)
