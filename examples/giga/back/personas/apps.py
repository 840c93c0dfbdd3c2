from django.apps import AppConfig
from django.core import checks


class PersonasConfig(AppConfig):
    name = "personas"
    verbose_name = "Personas"

    def ready(self):
        from . import ratelimit

        checks.register(ratelimit.check_rates)
