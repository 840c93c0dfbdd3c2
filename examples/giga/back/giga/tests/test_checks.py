"""The system checks: `manage.py check` fails without PostgreSQL."""

import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.core.management import call_command

from ..checks import check_database_engine, check_settings_sources, settings_source_files

BACK = Path(settings.BASE_DIR)
PACKAGE = __package__.partition(".")[0]
FILE_ENGINE = "django.db.backends.sqlite3"


def test_check_passes_with_the_project_settings():
    call_command("check")
    assert check_database_engine() == []
    assert check_settings_sources() == []


def test_settings_sources_follow_imports():
    files = {path.name for path in settings_source_files(f"{PACKAGE}.production")}
    # settings.py imports the package's logging and observability modules.
    assert files == {"production.py", "settings.py", "__init__.py", "logs.py", "observability.py"}


def test_engine_other_than_postgresql_is_an_error():
    default = {**settings.DATABASES["default"], "ENGINE": FILE_ENGINE}
    databases = {"default": default}
    errors = check_database_engine(database_settings=databases)
    assert [error.id for error in errors] == ["architecture.E001"]


def manage_check(tmp_path, settings_source, **environ):
    (tmp_path / "other_settings.py").write_text(settings_source)
    env = {**os.environ, **environ, "DJANGO_SETTINGS_MODULE": "other_settings",
           "PYTHONPATH": os.pathsep.join([str(tmp_path), str(BACK)])}
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=BACK, env=env,
                          capture_output=True, text=True, timeout=120)


def test_manage_py_check_fails_on_another_engine(tmp_path):
    # The engine comes from the environment, so the settings source does not
    # name it and only E001 applies. (In memory: model checks open it.)
    result = manage_check(tmp_path,
                          f"import os\nfrom {PACKAGE}.settings import *\n"
                          "DATABASES['default'] = {'ENGINE': os.environ['OTHER_ENGINE'], 'NAME': ':memory:'}\n",
                          OTHER_ENGINE=FILE_ENGINE)
    assert result.returncode == 1
    assert "architecture.E001" in result.stderr and "architecture.E002" not in result.stderr


def test_manage_py_check_fails_when_a_settings_module_mentions_the_file_database(tmp_path):
    result = manage_check(tmp_path, f"from {PACKAGE}.settings import *\n# fallback: sqlite\n")
    assert result.returncode == 1
    assert "architecture.E002" in result.stderr and "other_settings.py" in result.stderr
    assert "architecture.E001" not in result.stderr
