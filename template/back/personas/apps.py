from django.apps import AppConfig
from django.core import checks


class PersonasConfig(AppConfig):
    name = "personas"
    verbose_name = "Personas"

    def ready(self) -> None:
        from . import checks as personas_checks
        from . import ratelimit

        checks.register(ratelimit.check_rates)
        checks.register(ratelimit.check_trusted_proxies)
        checks.register(personas_checks.check_usernames_unique_ignoring_case, checks.Tags.database)
