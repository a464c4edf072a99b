"""Reports read the queue and visit tables; they store nothing of their own.

The model below holds no rows: it exists so the two report permissions have a home.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Report(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_reports", _("Can see the process measures for a site")),
            ("view_outreach", _("Can see the haven't-seen-in-a-while outreach list")),
        ]

    def __str__(self) -> str:
        return "report"
