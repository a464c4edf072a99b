"""Sites, their services, rooms and staff, and shifts, in the admin.

Every admin here is scoped (clinic/admin_site.py): a director sees and changes only the sites
they direct and the people working there; superusers see everything. Changes to staff go
through the services in clinic/staff.py, the same ones the staff page uses, so the rules
(who may set whose password, nobody takes away their own director role, sessions end when a
role is taken away) hold wherever the change is made.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model, logout
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.plugins.otp_totp.models import TOTPDevice

from clinic import staff
from clinic.admin_site import ScopedInline, ScopedModelAdmin
from clinic.models import Membership, Room, Service, Shift, Site
from clinic.staff_forms import RolesField, StaffCreationForm, StaffPasswordForm

User = get_user_model()


def _operator(request) -> bool:
    return request.user.is_active and request.user.is_superuser


class NothingSavedOnRefusal:
    """A service refusing at save time (e.g. someone else changed the same account a moment
    before) leaves nothing half-saved: the admin's transaction is rolled back and the page
    says why, instead of an error page. Forms normally catch the same rules first."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            self.message_user(
                request,
                gettext("Nothing was saved: %(why)s") % {"why": " ".join(error.messages)},
                messages.ERROR,
            )
            return HttpResponseRedirect(request.get_full_path())


# --- memberships (inlines of a site and of an account) ----------------------------------------


class MembershipAdminForm(forms.ModelForm):
    roles = RolesField(required=False)

    class Meta:
        model = Membership
        fields = ["user", "site", "discipline", "roles"]

    def __init__(self, *args, by=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.by = by
        if self.instance.pk:
            self.initial["roles"] = staff.role_names(self.instance)

    def clean(self):
        cleaned = super().clean()
        if self.errors or not self.has_changed():
            return cleaned
        membership, roles = self.instance, cleaned.get("roles", [])
        try:
            if not membership.pk:
                staff.membership_check_add(
                    by=self.by,
                    account=cleaned.get("user") or membership.user,
                    site=cleaned.get("site") or membership.site,
                )
            elif {"user", "site"} & set(self.changed_data):
                raise ValidationError(
                    _("A row cannot be moved to another person or site: add a new row instead."),
                    code="moved",
                )
            else:
                staff.membership_check_change(by=self.by, membership=membership, roles=roles)
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned


class MembershipFormSet(BaseInlineFormSet):
    by = None  # the signed-in user; set on the class made for each request

    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "by": self.by}

    def clean(self):
        super().clean()
        # A row ticked for deletion is not validated by its form (and one whose id is not
        # among this page's rows has no instance: it is skipped, as Django does).
        for form in self.initial_forms:
            if self._should_delete_form(form) and form.instance.pk:
                staff.membership_check_remove(by=self.by, membership=form.instance)


def memberships_save(request, formset) -> None:
    """Save a membership formset through the services (the admin's change message reads the
    lists set here)."""
    by, keep = request.user, request.session.session_key
    deleted = set(formset.deleted_forms)
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    for form in formset.initial_forms:
        if form.instance.pk is None:
            continue
        if form in deleted:
            staff.membership_remove(by=by, membership=form.instance, keep_session=keep)
            formset.deleted_objects.append(form.instance)
        elif form.has_changed():
            staff.membership_set_roles(
                by=by,
                membership=form.instance,
                roles=form.cleaned_data["roles"],
                discipline=form.cleaned_data["discipline"],
                keep_session=keep,
            )
            formset.changed_objects.append((form.instance, form.changed_data))
    for form in formset.extra_forms:
        if form in deleted or not form.has_changed():
            continue
        formset.new_objects.append(
            staff.membership_add(
                by=by,
                account=form.instance.user,
                site=form.instance.site,
                discipline=form.cleaned_data["discipline"],
                roles=form.cleaned_data["roles"],
            )
        )


class MembershipInline(ScopedInline, admin.TabularInline):
    model = Membership
    form = MembershipAdminForm
    formset = MembershipFormSet
    extra = 1
    readonly_fields = ["external_id"]

    class Media:
        css = {"all": ["css/admin-staff.css"]}

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user", "site")
        if not _operator(request):
            # Operators' own memberships are theirs to manage.
            queryset = queryset.exclude(user__is_superuser=True)
        return queryset

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.by = request.user
        return formset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user":
            kwargs["queryset"] = staff.accounts_directed_by(request.user)
        elif db_field.name == "site":
            kwargs["queryset"] = self.scope(request, "add").sites()
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        # A new account comes with its own membership (the add form asks for the site), so
        # "add another" from a membership row would only make a duplicate.
        if field is not None and hasattr(field.widget, "can_add_related"):
            field.widget.can_add_related = False
        return field


class SiteMembershipInline(MembershipInline):
    fk_name = "site"
    fields = ["user", "discipline", "roles"]
    autocomplete_fields = ["user"]


class AccountMembershipInline(MembershipInline):
    fk_name = "user"
    fields = ["site", "discipline", "roles", "external_id"]

    def in_scope(self, scope, obj):
        # The parent is the account, whose page is already limited to the director's staff.
        return bool(scope)


# --- sites --------------------------------------------------------------------------------------


class ServiceInline(ScopedInline, admin.TabularInline):
    model = Service
    extra = 1


class RoomInline(ScopedInline, admin.TabularInline):
    model = Room
    extra = 1


@admin.register(Site)
class SiteAdmin(NothingSavedOnRefusal, ScopedModelAdmin):
    site_lookup = "pk"
    list_display = ["name", "slug", "timezone", "is_active", "require_second_factor"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ServiceInline, RoomInline, SiteMembershipInline]
    actions = ["rotate_display_link"]
    readonly_fields = ["display_link"]

    @admin.display(description=_("waiting-room display link"))
    def display_link(self, obj):
        if not obj.pk:
            return "-"
        return f"/queue/display/{obj.display_token}/"

    @admin.action(
        description=_("Rotate the waiting-room display link (old screens disconnect)"),
        permissions=["change"],
    )
    def rotate_display_link(self, request, queryset):
        from queues.services import site_rotate_display_token

        for site in self.scope(request, "change").filter(queryset, "pk"):
            site_rotate_display_token(site=site)
        messages.success(request, _("New display links made; old screens were disconnected."))

    def save_model(self, request, obj, form, change):
        if change and "require_second_factor" in form.changed_data:
            self._save_second_factor(request, obj, form, change)
        else:
            super().save_model(request, obj, form, change)
        if change and "display_chime" in form.changed_data:
            from queues.services import queue_version_bump

            # A new version: open waiting-room displays get a snapshot, which carries the
            # setting, at once (after this save commits), not at their next reload.
            queue_version_bump(obj.pk)

    def _save_second_factor(self, request, obj, form, change):
        # Turning the second factor on ends the sessions of the site's directors and privacy
        # officers (clinic.staff.site_set_second_factor); this page's own stays only when it
        # was already verified with a code.
        required = obj.require_second_factor
        obj.require_second_factor = form.initial.get("require_second_factor", False)
        super().save_model(request, obj, form, change)
        verified = getattr(request.user, "is_verified", lambda: False)()
        staff.site_set_second_factor(
            by=request.user,
            site=obj,
            required=required,
            keep_session=request.session.session_key if verified else None,
        )
        # Their own session ended too, unless verified with a code: they sign in again with
        # one (or set an app up) once this change is logged (response_change).
        request.signed_out_for_second_factor = required and not verified

    def response_change(self, request, obj):
        response = super().response_change(request, obj)
        if getattr(request, "signed_out_for_second_factor", False):
            logout(request)
            return HttpResponseRedirect(reverse("login") + "?next=" + request.path)
        return response

    def save_formset(self, request, form, formset, change):
        if formset.model is Membership:
            memberships_save(request, formset)
        else:
            super().save_formset(request, form, formset, change)


# --- shifts -------------------------------------------------------------------------------------


class ShiftAdminForm(forms.ModelForm):
    class Meta:
        model = Shift
        fields = ["site", "user", "starts_at", "ends_at"]  # the day follows from starts_at

    def clean(self):
        cleaned = super().clean()
        user, site = cleaned.get("user"), cleaned.get("site")
        if user and site and not Membership.objects.filter(user=user, site=site).exists():
            message = _("%(user)s does not work at %(site)s.") % {"user": user, "site": site}
            self.add_error("user", message)
        return cleaned


@admin.register(Shift)
class ShiftAdmin(ScopedModelAdmin):
    """Hours on shift: the denominator of visits per staff-hour (reports, M18)."""

    form = ShiftAdminForm
    list_display = ["day", "site", "user", "starts_at", "ends_at"]
    list_filter = [("site", admin.RelatedOnlyFieldListFilter)]
    date_hierarchy = "starts_at"
    autocomplete_fields = ["user"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "site":
            kwargs["queryset"] = self.scope(request, "add").sites()
        elif db_field.name == "user":
            kwargs["queryset"] = staff.accounts_directed_by(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- staff accounts -----------------------------------------------------------------------------


class WorksAtFilter(admin.SimpleListFilter):
    title = _("works at")
    parameter_name = "site"

    def lookups(self, request, model_admin):
        sites = model_admin.scope(request, "view").sites()
        return [(str(site.pk), site.name) for site in sites]

    def queryset(self, request, queryset):
        # Only the sites offered: filtering by another site would tell who else works there.
        if self.value() in {value for value, _label in self.lookup_choices}:
            return queryset.filter(memberships__site_id=int(self.value()))
        return queryset


class StaffCreationAdminForm(StaffCreationForm):
    site = forms.ModelChoiceField(label=_("Site"), queryset=Site.objects.none())
    sites = Site.objects.none()  # the sites the director may add staff at; set per request

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["site"].queryset = self.sites


# Django's own user admin (registered by django.contrib.auth, before this app) is replaced.
if admin.site.is_registered(User):
    admin.site.unregister(User)

# Authenticator apps are not shown in the admin (their secrets would be): a director resets a
# lost one from the staff page. (django-axes' pages are off: AXES_ENABLE_ADMIN.)
if admin.site.is_registered(TOTPDevice):
    admin.site.unregister(TOTPDevice)


@admin.register(User)
class StaffUserAdmin(NothingSavedOnRefusal, ScopedModelAdmin, auth_admin.UserAdmin):
    """Staff accounts. A director sees the accounts working at a site they direct (never a
    superuser's), changes their memberships there, and their password, names and status only
    when every site the account works at is one they direct (never their own). Accounts are
    never deleted here: deactivate them (visits, shifts and logs keep pointing at them)."""

    add_form = StaffCreationAdminForm
    add_fieldsets = (
        (None, {"fields": ("username", "first_name", "last_name", "password1", "password2")}),
        (_("Where they work"), {"fields": ("site", "discipline", "roles")}),
    )
    change_user_password_template = "admin/auth/user/staff_password.html"  # noqa: S105
    list_display = ["username", "first_name", "last_name", "is_active"]
    list_filter = ["is_active", WorksAtFilter]
    search_fields = ["username", "first_name", "last_name", "email"]
    inlines = [AccountMembershipInline]

    class Media:
        css = {"all": ["css/admin-staff.css"]}

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        found = self.scope(request, "view")
        if found.everywhere:
            return queryset
        at_sites = Membership.objects.filter(site_id__in=found.site_ids).values("user_id")
        return queryset.filter(pk__in=at_sites).exclude(is_superuser=True)

    def in_scope(self, scope, obj):
        if scope.everywhere:
            return True
        return (
            not obj.is_superuser
            and Membership.objects.filter(user=obj, site_id__in=scope.site_ids).exists()
        )

    def has_delete_permission(self, request, obj=None):
        return False

    def manageable(self, request, obj) -> bool:
        """Whether the account itself (password, names, status) is the user's to change."""
        cache = request.__dict__.setdefault("_threshold_manageable", {})
        if obj.pk not in cache:
            cache[obj.pk] = staff.may(staff.account_check_manage, by=request.user, account=obj)
        return cache[obj.pk]

    def get_fieldsets(self, request, obj=None):
        if obj is None or _operator(request):
            return super().get_fieldsets(request, obj)
        if self.manageable(request, obj):
            first = {"fields": ["username", "password"]}
        else:
            # Why the account's own fields are read-only here.
            reason = staff.why_not(staff.account_check_manage, by=request.user, account=obj)
            first = {"fields": ["username"], "description": reason}
        return (
            (None, first),
            (_("Personal info"), {"fields": ["first_name", "last_name", "email"]}),
            (_("Status"), {"fields": ["is_active"]}),
            (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None or _operator(request):
            return super().get_readonly_fields(request, obj)
        dates = ["last_login", "date_joined"]
        if self.manageable(request, obj):
            return dates
        return ["username", "first_name", "last_name", "email", "is_active", *dates]

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None:
            form.sites = self.scope(request, "add").sites()
        return form

    def get_inlines(self, request, obj):
        # A new account's site and roles are on the add form itself.
        return self.inlines if obj is not None else []

    def save_model(self, request, obj, form, change):
        if not change:
            created = staff.staff_create(
                by=request.user,
                site=form.cleaned_data["site"],
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data.get("first_name", ""),
                last_name=form.cleaned_data.get("last_name", ""),
                discipline=form.cleaned_data["discipline"],
                roles=form.cleaned_data["roles"],
            ).user
            # The admin goes on with `obj` (its log entry, the page it shows next).
            obj.pk, obj.password = created.pk, created.password
            obj._state.adding, obj._state.db = False, created._state.db
            return
        fields = (*staff.ACCOUNT_FIELDS, *staff.OPERATOR_FIELDS)
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in fields}
        if changes:
            staff.staff_update(by=request.user, account=obj, **changes)

    def save_formset(self, request, form, formset, change):
        if formset.model is Membership:
            memberships_save(request, formset)
        else:
            super().save_formset(request, form, formset, change)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["history_allowed"] = obj is not None and self.manageable(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def history_view(self, request, object_id, extra_context=None):
        # The history of an account that also works elsewhere tells of its memberships and
        # roles there (e.g. "Changed roles for site membership “casey @ Hillside”").
        account = self.get_object(request, unquote(object_id))
        if account is None:
            raise Http404
        if not self.manageable(request, account):
            raise PermissionDenied
        return super().history_view(request, object_id, extra_context)

    @method_decorator(sensitive_post_parameters())
    def user_change_password(self, request, id, form_url=""):
        """Set someone's password (never one's own here: see the account page). Every session
        of theirs ends."""
        account = self.get_object(request, unquote(id))
        if account is None:
            raise Http404
        if not self.has_change_permission(request, account) or account.pk == request.user.pk:
            raise PermissionDenied
        if not self.manageable(request, account):
            raise PermissionDenied
        form = StaffPasswordForm(account, request.POST if request.method == "POST" else None)
        if request.method == "POST" and form.is_valid():
            try:
                staff.staff_set_password(
                    by=request.user, account=account, password=form.cleaned_data["new_password1"]
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                self.log_change(request, account, [{"changed": {"fields": ["password"]}}])
                messages.success(
                    request, gettext("Password changed. They were signed out everywhere.")
                )
                return HttpResponseRedirect(
                    reverse(f"{self.admin_site.name}:auth_user_change", args=[account.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Set a new password: %(username)s")
            % {"username": account.get_username()},
            "form": form,
            "opts": self.opts,
            "original": account,
            "form_url": form_url,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.change_user_password_template, context)
