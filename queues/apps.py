from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class QueuesConfig(AppConfig):
    # The package is "queues" because a top-level "queue" would shadow the standard library.
    name = "queues"
    label = "queue"
    verbose_name = _("Walk-in queue")
