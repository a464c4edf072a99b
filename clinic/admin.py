from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from clinic.models import Membership, Room, Service, Shift, Site


class ServiceInline(admin.TabularInline):
    model = Service
    extra = 1


class RoomInline(admin.TabularInline):
    model = Room
    extra = 1


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Site)
class SiteAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "timezone", "is_active"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ServiceInline, RoomInline, MembershipInline]
    actions = ["rotate_display_link"]
    readonly_fields = ["display_link"]

    @admin.display(description=_("waiting-room display link"))
    def display_link(self, obj):
        if not obj.pk:
            return "-"
        return f"/queue/display/{obj.display_token}/"

    @admin.action(description=_("Rotate the waiting-room display link (old screens disconnect)"))
    def rotate_display_link(self, request, queryset):
        from queues.services import site_rotate_display_token

        for site in queryset:
            site_rotate_display_token(site=site)
        messages.success(request, _("New display links made; old screens were disconnected."))


@admin.register(Shift)
class ShiftAdmin(admin.ModelAdmin):
    """Hours on shift: the denominator of visits per staff-hour (reports, M18)."""

    list_display = ["day", "site", "user", "starts_at", "ends_at"]
    list_filter = ["site"]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["user"]
    exclude = ["day"]
