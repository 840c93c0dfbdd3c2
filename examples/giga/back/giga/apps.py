from django.apps import AppConfig
from django.core import checks


class ProjectConfig(AppConfig):
    """The project package is an app too: health view, system checks and the
    wait_for_db and verify_architecture management commands."""

    name = __package__
    verbose_name = "Project"

    def ready(self) -> None:
        from . import checks as architecture_checks
        from . import observability

        observability.connect()

        # Tagged "architecture", not "database": checks tagged "database" run
        # only with `check --database`, these must run on every `manage.py check`.
        checks.register(architecture_checks.check_database_engine, "architecture")
        checks.register(architecture_checks.check_settings_sources, "architecture")
