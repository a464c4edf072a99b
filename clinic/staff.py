"""Staff accounts and their site memberships, as directors manage them (the staff page and the
admin both call these).

Who may do what:

- A director manages the memberships at the sites they direct (`clinic.sites.directed_sites`):
  adds people there, sets their roles and discipline, takes them off the site. Roles can only be
  given at those sites. A director cannot take away their own director role or their own
  membership at a site they direct, so that no site is left without anyone to run it by
  accident.
- An account itself (password, username, names, e-mail, active or not) belongs to every site
  it works at: a director may change it only when *every* membership of the account is at a
  site they direct, never a superuser's account and never their own (their own password goes
  through their account page). Otherwise a director of one site could take over a colleague
  who directs another.
- Superusers, the installation's operators, may do all of it at every site.

Setting a password, deactivating an account and taking a role or a membership away end every
session of that account (`clinic.accounts.sessions_end`); adding roles does not.

Refusals are Django `ValidationError`s with a `code`, per field where one belongs, so that
`form.add_error(None, error)` puts them in the right place.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from clinic.accounts import sessions_end
from clinic.models import Membership, Site
from clinic.roles import DIRECTOR, ROLE_LABELS, ROLE_NAMES, SECOND_FACTOR_ROLES
from clinic.sites import directed_sites

# What a director may change on an account they fully manage; operators may also change the
# OPERATOR_FIELDS (groups and permissions grant nothing in this project; only operators see
# them in the admin).
ACCOUNT_FIELDS = ("username", "first_name", "last_name", "email", "is_active")
OPERATOR_FIELDS = ("is_staff", "is_superuser")


def _operator(user) -> bool:
    return bool(user is not None and user.is_active and user.is_superuser)


# --- reads --------------------------------------------------------------------------------------


def directs(user, site: Site) -> bool:
    """Whether `user` manages `site`'s staff: an operator, or the director there."""
    return _operator(user) or directed_sites(user).filter(pk=site.pk).exists()


def accounts_directed_by(user):
    """The accounts `user` may see and pick: everyone for an operator; for a director, the
    accounts with a membership at a site they direct, never a superuser's."""
    User = get_user_model()
    if _operator(user):
        return User.objects.all()
    return (
        User.objects.filter(memberships__site__in=directed_sites(user))
        .exclude(is_superuser=True)
        .distinct()
    )


def site_staff(site: Site):
    """The memberships at `site` with their accounts and roles, by name."""
    return (
        Membership.objects.filter(site=site)
        .select_related("user")
        .prefetch_related("roles")
        .order_by("user__first_name", "user__last_name", "user__username")
    )


def role_names(membership: Membership) -> list[str]:
    """The membership's roles, in the order roles are listed everywhere (clinic.roles)."""
    held = {group.name for group in membership.roles.all()}
    return [name for name in ROLE_NAMES if name in held]


def may(check, **kwargs) -> bool:
    """True when `check(**kwargs)` refuses nothing (for pages deciding what to offer)."""
    return why_not(check, **kwargs) is None


def why_not(check, **kwargs) -> str | None:
    """Why `check(**kwargs)` refuses, or None when it does not."""
    try:
        check(**kwargs)
    except ValidationError as error:
        return " ".join(error.messages)
    return None


@dataclass(frozen=True)
class StaffRow:
    membership: Membership
    roles: list[str]  # role names, in clinic.roles order
    locked_out: bool = False  # locked after repeated failed sign-ins (clinic.throttling)

    @property
    def account(self):
        return self.membership.user

    @property
    def role_labels(self) -> list[str]:
        return [str(ROLE_LABELS[name]) for name in self.roles]


def staff_rows(*, site: Site) -> list[StaffRow]:
    """Who works at `site`, with their roles there and whether they are locked out (the staff
    page's list)."""
    from clinic.throttling import locked_out_usernames

    memberships = list(site_staff(site))
    locked = locked_out_usernames(m.user.get_username() for m in memberships)
    return [
        StaffRow(m, role_names(m), locked_out=m.user.get_username() in locked) for m in memberships
    ]


def member_actions(*, by, membership: Membership) -> dict:
    """What `by` may do about one member of a site, and why not (the member's page)."""
    account = membership.user
    roles_refusal = why_not(membership_check_change, by=by, membership=membership)
    account_refusal = why_not(account_check_manage, by=by, account=account)
    if account_refusal is None and account.pk == by.pk:
        account_refusal = _("Your own password and details are changed on your account page.")
    return {
        "roles_refusal": roles_refusal,
        "account_refusal": account_refusal,
        "remove_refusal": why_not(membership_check_remove, by=by, membership=membership),
    }


# --- the rules (services check them again inside their transaction) ----------------------------


def site_check_director(*, by, site: Site) -> None:
    if not directs(by, site):
        raise ValidationError(
            _("Only a director of %(site)s can change who works there.") % {"site": site},
            code="not_director",
        )


def account_check_manage(*, by, account) -> None:
    """Refuse unless `by` may change `account` itself: its password, names, active status."""
    if _operator(by):
        return
    if account.pk == by.pk:
        raise ValidationError(
            _("Your own password and details are changed on your account page."),
            code="own_account",
        )
    if account.is_superuser:
        raise ValidationError(
            _("This account belongs to the installation's operators."), code="operator_account"
        )
    sites = set(Membership.objects.filter(user=account).values_list("site_id", flat=True))
    directed = set(directed_sites(by).values_list("pk", flat=True))
    if not sites & directed:
        raise ValidationError(
            _("This account does not work at a site you direct."), code="not_at_your_sites"
        )
    if not sites <= directed:
        raise ValidationError(
            _(
                "This account also works at a site you do not direct, so only the "
                "installation's operators can change its password, name or status."
            ),
            code="account_elsewhere",
        )


def membership_check_change(*, by, membership: Membership, roles: Iterable[str] | None = None):
    """Refuse unless `by` may change `membership` (to hold `roles`, when given)."""
    site_check_director(by=by, site=membership.site)
    if membership.user.is_superuser and not _operator(by):
        raise ValidationError(
            _("This account belongs to the installation's operators."), code="operator_account"
        )
    if roles is not None:
        _role_groups(roles)
        if _own_director_role(by, membership) and DIRECTOR not in set(roles):
            raise ValidationError(
                {
                    "roles": ValidationError(
                        _(
                            "You cannot take away your own director role: %(site)s would be "
                            "left without you to run it. Another director of the site (or the "
                            "installation's operators) can do it."
                        )
                        % {"site": membership.site},
                        code="own_director_role",
                    )
                }
            )


def membership_check_remove(*, by, membership: Membership) -> None:
    membership_check_change(by=by, membership=membership)
    if _own_director_role(by, membership):
        raise ValidationError(
            _(
                "You cannot take yourself off %(site)s while you direct it: the site would be "
                "left without you to run it. Another director of the site (or the "
                "installation's operators) can do it."
            )
            % {"site": membership.site},
            code="own_director_role",
        )


def membership_check_add(*, by, account, site: Site) -> None:
    site_check_director(by=by, site=site)
    if not accounts_directed_by(by).filter(pk=account.pk).exists():
        raise ValidationError(
            _("This account does not work at a site you direct."), code="not_at_your_sites"
        )
    if site.pk and Membership.objects.filter(user=account, site=site).exists():
        raise ValidationError(
            _("%(account)s already works at %(site)s.") % {"account": account, "site": site},
            code="already_member",
        )


def _own_director_role(by, membership: Membership) -> bool:
    # Operators can always put a director back, so the rule is for directors only.
    return (
        membership.user_id == by.pk
        and not _operator(by)
        and membership.roles.filter(name=DIRECTOR).exists()
    )


def _role_groups(roles: Iterable[str]) -> list[Group]:
    wanted = set(roles)
    if not wanted <= set(ROLE_NAMES):
        raise ValidationError(
            {"roles": ValidationError(_("Please choose roles from the list."), code="unknown_role")}
        )
    return list(Group.objects.filter(name__in=wanted))


def _username_taken(username: str, *, other_than=None) -> bool:
    rows = get_user_model().objects.filter(username__iexact=username)
    if other_than is not None:
        rows = rows.exclude(pk=other_than.pk)
    return rows.exists()


def _username_error() -> ValidationError:
    return ValidationError(
        {
            "username": ValidationError(
                _("That username is taken. Please choose another."), code="username_taken"
            )
        }
    )


# --- writes -------------------------------------------------------------------------------------


def staff_create(
    *,
    by,
    site: Site,
    username: str,
    password: str,
    discipline: str,
    roles: Iterable[str],
    first_name: str = "",
    last_name: str = "",
) -> Membership:
    """A new account with `password` (already checked by the password validators) working at
    `site` in `discipline` with `roles`: account and membership in one transaction (an account
    without a membership would vanish from its director's lists).

    The username must be free whatever its case (two accounts "Dana" and "dana" confuse
    everyone)."""
    User = get_user_model()
    with transaction.atomic():
        site_check_director(by=by, site=site)
        groups = _role_groups(roles)
        username = User.normalize_username(username)
        if _username_taken(username):
            raise _username_error()
        account = User(username=username, first_name=first_name, last_name=last_name)
        account.set_password(password)
        try:
            with transaction.atomic():
                account.save()
        except IntegrityError as error:  # taken at the same moment by someone else
            raise _username_error() from error
        membership = Membership.objects.create(user=account, site=site, discipline=discipline)
        membership.roles.set(groups)
        if _needs_second_factor_now(site, set(roles)):
            _end_sessions(by, account, None)
    return membership


def staff_update(*, by, account, **changes) -> None:
    """Change the account's own fields (ACCOUNT_FIELDS; OPERATOR_FIELDS for operators).
    Deactivating it ends all its sessions. Locks the account row."""
    unknown = set(changes) - set(ACCOUNT_FIELDS) - set(OPERATOR_FIELDS)
    if unknown:
        raise TypeError(f"staff_update() cannot change {sorted(unknown)}")
    User = get_user_model()
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=account.pk)
        account_check_manage(by=by, account=locked)
        if set(changes) & set(OPERATOR_FIELDS) and not _operator(by):
            raise ValidationError(
                _("Only the installation's operators can change this."), code="operator_only"
            )
        if changes.get("is_active") is False and locked.pk == by.pk:
            raise ValidationError(_("You cannot deactivate your own account."), code="own_account")
        if "username" in changes:
            changes["username"] = User.normalize_username(changes["username"])
            if _username_taken(changes["username"], other_than=locked):
                raise _username_error()
        was_active = locked.is_active
        for name, value in changes.items():
            setattr(locked, name, value)
            setattr(account, name, value)
        if changes:
            locked.save(update_fields=list(changes))
        if was_active and not locked.is_active:
            sessions_end(user=locked)


def staff_set_active(*, by, account, active: bool) -> None:
    """Deactivate (every session ends) or reactivate an account."""
    staff_update(by=by, account=account, is_active=active)


def staff_set_password(*, by, account, password: str) -> None:
    """Give the account a new password (already checked by the password validators) and end
    every session it has. Never one's own (that goes through the account page, which asks for
    the current password). Locks the account row."""
    User = get_user_model()
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=account.pk)
        if locked.pk == by.pk:
            raise ValidationError(
                _("Your own password is changed on your account page."), code="own_account"
            )
        account_check_manage(by=by, account=locked)
        locked.set_password(password)
        locked.save(update_fields=["password"])
        account.password = locked.password
        sessions_end(user=locked)


def membership_add(*, by, account, site: Site, discipline: str, roles: Iterable[str]) -> Membership:
    """`account` (one `by` can already see) starts working at `site`."""
    with transaction.atomic():
        membership_check_add(by=by, account=account, site=site)
        groups = _role_groups(roles)
        membership = Membership.objects.create(user=account, site=site, discipline=discipline)
        membership.roles.set(groups)
        if _needs_second_factor_now(site, set(roles)):
            _end_sessions(by, account, None)
    return membership


def membership_set_roles(
    *,
    by,
    membership: Membership,
    roles: Iterable[str],
    discipline: str | None = None,
    keep_session: str | None = None,
) -> None:
    """Set the roles (and discipline) held at the membership's site. Taking a role away ends
    the account's sessions (but `keep_session`, the asking page's own, when it is `by`'s own
    account). Locks the membership row."""
    roles = list(roles)
    with transaction.atomic():
        locked = (
            Membership.objects.select_for_update()
            .select_related("user", "site")
            .get(pk=membership.pk)
        )
        membership_check_change(by=by, membership=locked, roles=roles)
        before = set(role_names(locked))
        locked.roles.set(_role_groups(roles))
        if discipline is not None and discipline != locked.discipline:
            locked.discipline = membership.discipline = discipline
            locked.save(update_fields=["discipline"])
        if before - set(roles):
            _end_sessions(by, locked.user, keep_session)
        elif _needs_second_factor_now(locked.site, set(roles) - before):
            # The next sign-in asks for (or sets up) the code this role needs here.
            _end_sessions(by, locked.user, keep_session)


def membership_remove(*, by, membership: Membership, keep_session: str | None = None) -> None:
    """Take the account off the membership's site (its roles there go with it) and end its
    sessions. Locks the membership row."""
    with transaction.atomic():
        locked = (
            Membership.objects.select_for_update()
            .select_related("user", "site")
            .get(pk=membership.pk)
        )
        membership_check_remove(by=by, membership=locked)
        locked.delete()
        _end_sessions(by, locked.user, keep_session)


def _needs_second_factor_now(site: Site, given: set[str]) -> bool:
    return site.require_second_factor and bool(given & set(SECOND_FACTOR_ROLES))


def site_set_second_factor(*, by, site: Site, required: bool, keep_session=None) -> None:
    """Require (or stop requiring) a second factor of the site's directors and privacy
    officers. Turning it on ends their sessions, so that each signs in again with a code (or
    sets an app up); `keep_session` (the asking page's own, when it is already verified with
    a code) stays."""
    with transaction.atomic():
        locked = Site.objects.select_for_update().get(pk=site.pk)
        site_check_director(by=by, site=locked)
        turned_on = required and not locked.require_second_factor
        locked.require_second_factor = site.require_second_factor = required
        locked.save(update_fields=["require_second_factor"])
        if turned_on:
            holders = get_user_model().objects.filter(
                memberships__site=locked, memberships__roles__name__in=SECOND_FACTOR_ROLES
            )
            for account in holders.distinct():
                sessions_end(user=account, keep=keep_session if account.pk == by.pk else None)


def staff_unlock(*, by, account, site: Site):
    """Let an account of `site` that is locked out after failed sign-ins try again."""
    from clinic.throttling import account_unlock

    return account_unlock(user=account, by=by, site=site)


def staff_second_factor_reset(*, by, account) -> None:
    """Forget a colleague's authenticator app (a lost phone) and end their sessions; their next
    sign-in sets up a new one where it is required. Only for an account `by` fully manages."""
    from clinic.signin import second_factor_remove

    with transaction.atomic():
        account_check_manage(by=by, account=account)
        second_factor_remove(account)
        sessions_end(user=account)


def _end_sessions(by, account, keep_session: str | None) -> None:
    sessions_end(user=account, keep=keep_session if account.pk == by.pk else None)
