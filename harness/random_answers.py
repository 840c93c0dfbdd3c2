"""Random answer sets for property tests (hypothesis), and the rule that says
which of them the template must refuse.

`answer_sets()` draws every question's answer: random text for the free-text
answers, random valid values for the others (given as strings, as --data
does, or as YAML numbers, as a --data-file does). `expected_refusal(answers)`
is the rule for free text, written independently of
includes/validators.jinja: one line of Unicode, nothing any file language
breaks a line on, no lone surrogate, within each question's length; and
for admin_email, an address Django's mail can send from.

Shared by test_answers.py (which holds the template to the rule), and by
test_quality.py and test_e2e.py (which run a random render's code and
journeys).
"""

from __future__ import annotations

import re

import yaml
from hypothesis import strategies as st

from .answers import POSTGRES_VERSIONS, choices
from .render import REPO

FREE_TEXT = ("project_name", "db_password", "db_admin_password", "db_monitor_password", "django_secret_key",
             "admin_email")
QUESTION_ORDER = list(yaml.safe_load((REPO / "copier.yml").read_text()))

# ---------------------------------------------------------------------------
# The rule for free text
# ---------------------------------------------------------------------------
NOT_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# What Django's mail sends from: an ASCII dot-atom or quoted local part, and
# a host name of two labels or more (letters of any script: IDNA).
ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-"
LOCAL_PART = re.compile(rf'[{ATEXT}]+(\.[{ATEXT}]+)*|"([!#-\[\]-~]|\\[ -~])*"')


def sendable(address: str) -> bool:
    local, at, host = address.rpartition("@")
    labels = host.split(".")
    return bool(at) and bool(LOCAL_PART.fullmatch(local)) and len(labels) >= 2 and labels[-1][:1].isalpha() \
        and all(label and label.replace("-", "").isalnum() and label[0] != "-" != label[-1] for label in labels)


def expected_refusal(answers: dict) -> str | None:
    """The first question (in copier.yml's order) whose answer must be refused."""
    def refused(question: str, value: str) -> bool:
        if NOT_TEXT.search(value):
            return True
        if question == "project_name":
            return not value.strip() or len(value) > 60
        if question == "admin_email":
            return not sendable(value) or len(value) > 254
        return not 1 <= len(value) <= 512 or (question == "django_secret_key" and len(value) < 50)
    return next((q for q in QUESTION_ORDER if q in FREE_TEXT and refused(q, answers[q])), None)


# ---------------------------------------------------------------------------
# Strategies
# ---------------------------------------------------------------------------
PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))
# What breaks files: quotes, escapes, $ and # (env, shell), Jinja and YAML
# markers, blanks, bidi and zero-width characters, astral emoji.
AWKWARD = st.sampled_from(list("\"'\\$#{}%:@ /`;!&|<>=*?[]~-") + ["{{", "{%", "${X}", "$$", "\\n", "\u00a0",
                                                                  "\u200d", "\ufeff", "\u202e", "🚀", "👩‍💻", "ñ", "中"])
NOT_TEXT_CHARS = st.sampled_from(list("\x00\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x7f\x85\x9f\u2028\u2029") + ["\ud83d", "\udc80"])
ZONES = (REPO / "includes/timezones.txt").read_text().split()
LANGUAGES = (REPO / "includes/django_languages.txt").read_text().split()


@st.composite
def addresses(draw) -> str:
    """Mostly addresses mail can use, with what files must escape in them
    (quotes, $, {}, `, |); one in four free text, mostly refused."""
    if draw(st.integers(0, 3)) == 0:
        local = draw(free_text(max_size=20))
    else:
        atoms = st.text(st.sampled_from("aZ09!#$%&'*+/=?^_`{|}~-"), min_size=1, max_size=8)
        local = ".".join(draw(st.lists(atoms, min_size=1, max_size=3)))
    return local + "@" + draw(st.sampled_from(["example.com", "xn--bcher-kva.example", "büch.er"]))


@st.composite
def free_text(draw, min_size=1, max_size=40):
    """Mostly printable text; one answer in ten may hold what must be refused."""
    chars = st.one_of(PRINTABLE, AWKWARD)
    if draw(st.integers(0, 9)) == 0:
        chars = st.one_of(chars, NOT_TEXT_CHARS)
    return "".join(draw(st.lists(chars, min_size=min_size, max_size=max_size)))


def number(value: int):
    return st.sampled_from([value, str(value)])


@st.composite
def answer_sets(draw) -> dict:
    backend, frontend, host, mail = draw(st.lists(st.integers(1024, 65535), min_size=4, max_size=4, unique=True))
    return {
        "project_name": draw(free_text(max_size=60)),
        # x...: never one of the names the backend imports, nor a reserved word.
        "project_slug": draw(st.from_regex(r"x[a-z0-9_]{0,29}", fullmatch=True)),
        "db_password": draw(free_text()),
        "db_admin_password": draw(free_text()),
        "db_monitor_password": draw(free_text()),
        "django_secret_key": draw(free_text(min_size=48, max_size=80)),
        "db_port": draw(number(draw(st.integers(1024, 65535)))),
        "db_host_port": draw(number(draw(st.sampled_from([0, host])))),
        "backend_port": draw(number(backend)),
        "frontend_port": draw(number(frontend)),
        "postgres_version": draw(number(draw(st.sampled_from(POSTGRES_VERSIONS)))),
        "db_memory_mb": draw(number(draw(st.integers(256, 65536)))),
        "timezone": draw(st.sampled_from(ZONES)),
        "language_code": draw(st.sampled_from(LANGUAGES + ["en-us", "es-zz", "zh", "pt"])),
        "admin_email": draw(addresses()),
        "email_verification": draw(st.sampled_from(choices("email_verification"))),
        "mail_ui_port": draw(number(mail)),
    }
