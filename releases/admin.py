"""Consents, recipients and the disclosure log are read-only in the admin: no add, change or
delete for anyone, superusers included, and no release action. Changes go through the
privacy officer's pages, which call the services and the gate."""

from django.contrib import admin

from releases.models import Consent, DisclosureLog, Recipient


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}


@admin.register(Recipient)
class RecipientAdmin(ReadOnlyAdmin):
    list_display = ["organisation", "office", "person_name", "category", "is_active"]


@admin.register(Consent)
class ConsentAdmin(ReadOnlyAdmin):
    list_display = ["pk", "person", "signed_on", "expires_on"]


@admin.register(DisclosureLog)
class DisclosureLogAdmin(ReadOnlyAdmin):
    list_display = ["at", "decision", "reason", "path", "recipient_category"]
