from datetime import datetime

from django.contrib import messages
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from clinic.language import language_message
from clinic.models import Site
from clinic.sites import can, request_site_perms, site_permission_required
from queues import services
from queues.board import board_permissions_of, built_board
from queues.errors import QueueError
from queues.forms import (
    CallNextForm,
    CheckInForm,
    HandOffForm,
    PeopleSearchForm,
    RoomConfirmForm,
    RoomForm,
)
from queues.models import Arrival, EventKind, State
from queues.selectors import (
    display_snapshot,
    last_action,
    namesakes,
    people_search,
    person_match,
    queue_snapshot,
    rooms_in_use,
    staff_room,
)
from visits.errors import VisitError
from visits.forms_visit import HandOffNoteForm
from visits.services import visits as visit_services


def _back(request, default: str):
    target = request.POST.get("next") or request.GET.get("next")
    # A path of ours only; redirect() would take anything else for a view's name and fail.
    if (
        target
        and target.startswith("/")
        and url_has_allowed_host_and_scheme(
            target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return HttpResponseRedirect(target)
    return redirect(default)


# --- check-in ---------------------------------------------------------------------------------


@never_cache
@site_permission_required("queue.check_in")
def check_in(request):
    site = request.site
    if request.method == "POST" and "find" in request.POST:
        return _check_in_find(request)
    if request.method == "POST":
        form = CheckInForm(request.POST, site=site)
        namesakes = _namesakes(form)
        if namesakes:
            form.add_error(
                None,
                _(
                    "Someone called %(name)s is already known here. Choose them "
                    "below, or check in someone new with the same name."
                )
                % {"name": form.cleaned_data["name"]},
            )
            return render(
                request,
                "queues/check_in.html",
                {
                    "form": form,
                    "matches": namesakes,
                    "query": form.cleaned_data["name"],
                    "ask_new": True,
                },
            )
        if form.is_valid():
            data = form.cleaned_data
            try:
                arrival = services.arrival_check_in(
                    site=site,
                    by=request.user,
                    nonce=data["nonce"],
                    person=data.get("person_obj"),
                    name=data["name"],
                    pronouns=data["pronouns"],
                    date_of_birth=data["date_of_birth"],
                    phone=data["phone"],
                    what_helps=data["what_helps"],
                    service=data["service"],
                    urgent=data["urgent"],
                    urgent_reason=data["urgent_reason"],
                    appointment_at=_today_at(site, data["appointment_at"]),
                )
            except QueueError as error:
                form.add_error(None, error.message)
            else:
                language_message(request, _("urgent reason"), data["urgent_reason"])
                return redirect(f"{reverse('queues:check_in')}?arrival={arrival.pk}")
    else:
        form = CheckInForm(site=site)
    # From the appointments list: the person to check in, by record id (never by name).
    chosen = _person_from_link(request)
    if chosen is not None:
        form = CheckInForm(site=site, initial={"name": chosen.name})
    return render(
        request,
        "queues/check_in.html",
        {
            "form": form,
            "checked_in": _checked_in(request),
            "matches": [chosen] if chosen else [],
            "query": "",
        },
    )


# A search keeps everything typed so far but a choice of person (the name may have changed).
_FORGOTTEN_BY_SEARCH = {"person", "person_pick", "confirm_new"}


def _check_in_find(request):
    """ "Find people already known" without JavaScript, and Enter in a field: a POST, so the
    name never travels in a URL. The page again, with everything typed so far (nothing is
    saved) and the people known by that name."""
    search = PeopleSearchForm(request.POST)
    initial = {
        name: request.POST[name]
        for name in CheckInForm.base_fields
        if name in request.POST and name not in _FORGOTTEN_BY_SEARCH
    }
    return render(
        request,
        "queues/check_in.html",
        {
            "form": CheckInForm(site=request.site, initial=initial),
            "search": search,
            "matches": people_search(site=request.site, query=search.query()),
            "query": search.query(),
        },
    )


def _person_from_link(request):
    person_id = request.GET.get("person", "")
    # isdigit() alone accepts "²" and other digits int() refuses; ids fit in 63 bits.
    if not (person_id.isascii() and person_id.isdigit() and len(person_id) < 19):
        return None
    return person_match(site=request.site, pk=int(person_id))


def _namesakes(form: CheckInForm) -> list:
    """People already known by exactly the typed name, when a new person is about to be added."""
    if not form.is_valid():
        return []
    data = form.cleaned_data
    if data.get("person_obj") or data.get("confirm_new"):
        return []
    known = namesakes(site=form.site, name=data["name"])
    # A repeated tap of a check-in that went through: let it find that arrival, not ask again.
    # (Asked only when there is someone to ask about: the service looks the nonce up anyway.)
    if known and Arrival.objects.filter(site=form.site, nonce=data["nonce"]).exists():
        return []
    return known


def _today_at(site: Site, value) -> datetime | None:
    if value is None:
        return None
    today = timezone.localdate(timezone.now(), site.tz)
    return datetime.combine(today, value, tzinfo=site.tz)


def _checked_in(request):
    arrival_id = request.GET.get("arrival", "")
    # isdigit() alone accepts "²" and other digits int() refuses.
    if not (arrival_id.isascii() and arrival_id.isdigit()):
        return None
    arrival = (
        Arrival.objects.filter(pk=int(arrival_id), site=request.site)
        .select_related("person", "service")
        .first()
    )
    if arrival is None:
        return None
    arrival.returning = arrival.person.arrivals.filter(pk__lt=arrival.pk).exists()
    return arrival


@require_POST
@site_permission_required("queue.check_in")
def person_matches(request):
    """The known people shown as a name is typed (static/js/check-in.js). A POST, so the name
    never travels in a URL; it changes nothing."""
    search = PeopleSearchForm(request.POST)
    return render(
        request,
        "queues/_person_matches.html",
        {
            "search": search,
            "matches": people_search(site=request.site, query=search.query()),
            "query": search.query(),
        },
    )


# --- board ------------------------------------------------------------------------------------


@never_cache
@require_GET
@site_permission_required("queue.view_queue")
def board(request):
    site = request.site
    perms = board_permissions_of(request_site_perms(request))
    snapshot, live_html = built_board(site, perms)
    return render(
        request,
        "queues/board.html",
        {
            "snapshot": snapshot,
            "perms_here": perms,
            "live_html": live_html,
            "call_next_form": CallNextForm(site=site),
            **_room_context(request, perms),
        },
    )


@never_cache
@require_GET
@site_permission_required("queue.view_queue")
def board_live(request):
    """The same snapshot the websocket sends, for screens whose socket cannot connect."""
    snapshot, html = built_board(request.site, board_permissions_of(request_site_perms(request)))
    return JsonResponse({"type": "snapshot", "version": snapshot.version, "html": html})


# --- rooms: where the people someone calls are sent -------------------------------------------


def _room_context(request, perms) -> dict:
    """The board's room picker, and whether to say that no room is set (only where the site
    has rooms to choose from, and only to people who call)."""
    if not perms["call"]:
        return {}
    rooms = rooms_in_use(site=request.site, user=request.user)
    mine = next((room for room in rooms if room.mine), None)
    form = RoomForm(site=request.site, initial={"room": mine})
    # The select is made from the rooms just read (its own queryset would read them again).
    field = form.fields["room"]
    field.choices = [("", field.empty_label)] + [
        (field.prepare_value(room), field.label_from_instance(room)) for room in rooms
    ]
    return {"room_form": form, "room_unset": mine is None and bool(rooms)}


def _room_for_call(request):
    """(room, None) for a call to go ahead, or (None, response) asking to confirm the room.

    The day's first call asks which room, the remembered one chosen already; the answer comes
    back to the same address with everything the call carried (nothing typed is lost) and is
    remembered for the day. A site without rooms has nothing to ask.
    """
    site = request.site
    if "room_confirm" in request.POST:
        form = RoomConfirmForm(request.POST, site=site)
        if form.is_valid():
            room = services.staff_room_remember(
                site=site, user=request.user, room=form.cleaned_data["room"]
            )
            return room, None
        return None, _room_confirm_page(request, form, status=400)
    mine = staff_room(site=site, user=request.user)
    if mine.confirmed_today:
        return mine.room, None
    form = RoomConfirmForm(site=site, initial={"room": mine.room.pk if mine.room else ""})
    if not form.fields["room"].queryset.exists():
        return None, None
    return None, _room_confirm_page(request, form)


# What a call form carries that the confirmation hands back as it came.
_NOT_CARRIED = {"csrfmiddlewaretoken", "room", "room_confirm"}


def _room_confirm_page(request, form, *, status: int = 200):
    carried = [(k, v) for k, v in request.POST.items() if k not in _NOT_CARRIED]
    return render(
        request,
        "queues/confirm_room.html",
        {"form": form, "action": request.path, "carried": carried},
        status=status,
    )


@require_POST
@site_permission_required("queue.call_arrival")
def set_room(request):
    form = RoomForm(request.POST, site=request.site)
    if form.is_valid():
        room = services.staff_room_remember(
            site=request.site, user=request.user, room=form.cleaned_data["room"]
        )
        messages.success(
            request,
            _("People you call will be sent to %(room)s.") % {"room": room or _("the front desk")},
        )
    else:
        messages.error(request, _("Please pick a room at this site."))
    return redirect("queues:board")


@require_POST
@site_permission_required("queue.call_arrival")
def call_next(request):
    form = CallNextForm(request.POST, site=request.site)
    if not form.is_valid():
        messages.error(request, _("Please pick a service this site offers."))
        return redirect("queues:board")
    room, confirm = _room_for_call(request)
    if confirm is not None:
        return confirm
    try:
        arrival = services.arrival_call_next(
            site=request.site,
            by=request.user,
            room=room,
            service=form.cleaned_data["service"],
        )
    except QueueError as error:
        messages.warning(request, error.message)
    else:
        messages.success(request, _called_message(arrival))
    return redirect("queues:board")


def _called_message(arrival: Arrival) -> str:
    return _("Called %(ticket)s (%(name)s) to %(room)s.") % {
        "ticket": arrival.ticket,
        "name": arrival.person.name,
        "room": arrival.room or _("the front desk"),
    }


# Each action: the service, the permission it needs, what to say when it worked.
ACTIONS = {
    "call": (services.arrival_call, "queue.call_arrival", None),
    "start": (services.arrival_start, "queue.call_arrival", _("With you: %(ticket)s.")),
    "step-out": (
        services.arrival_step_out,
        "queue.mark_presence",
        _("%(ticket)s stepped out and keeps their place."),
    ),
    "back": (
        services.arrival_come_back,
        "queue.mark_presence",
        _("%(ticket)s is back in their place."),
    ),
    "left": (
        services.arrival_mark_left,
        "queue.mark_presence",
        _("%(ticket)s left before being seen."),
    ),
    "done": (services.arrival_finish, "queue.call_arrival", _("%(ticket)s is done.")),
    "undo": (services.arrival_undo, "queue.mark_presence", _("Undone for %(ticket)s.")),
}
# Undoing a clinical step needs the clinical permission too.
CLINICAL_EVENTS = {EventKind.CALLED, EventKind.STARTED, EventKind.HANDED_OFF, EventKind.DONE}


@require_POST
@site_permission_required("queue.view_queue")
def arrival_action(request, pk: int, action: str):
    if action not in ACTIONS:
        raise Http404
    service, perm, success = ACTIONS[action]
    arrival = get_object_or_404(Arrival, pk=pk, site=request.site)
    last = last_action(arrival) if action == "undo" else None
    if not can(request.user, perm, request.site) or (
        last is not None
        and last.kind in CLINICAL_EVENTS
        and not can(request.user, "queue.call_arrival", request.site)
    ):
        messages.error(request, _("Your role cannot do that."))
        return _back(request, "queues:board")
    revision = request.POST.get("revision", "")
    if not (revision.isascii() and revision.isdigit()):
        messages.error(request, _("This screen was out of date; here is the latest."))
        return _back(request, "queues:board")
    extra = {}
    if action == "call":
        room, confirm = _room_for_call(request)
        if confirm is not None:
            return confirm
        extra["room"] = room
    try:
        service(arrival=arrival, by=request.user, revision=int(revision), **extra)
    except QueueError as error:
        messages.warning(request, error.message)
    else:
        arrival.refresh_from_db()
        messages.success(
            request,
            _called_message(arrival) if success is None else success % {"ticket": arrival.ticket},
        )
        # Starting opens the visit: take the clinician straight to its record.
        if action == "start" and can(request.user, "visits.view_clinical", request.site):
            return redirect("visits:visit", arrival.visit.pk)
    return _back(request, "queues:board")


@never_cache
@site_permission_required("queue.call_arrival")
def hand_off(request, pk: int):
    arrival = get_object_or_404(
        Arrival.objects.select_related("person", "staff"), pk=pk, site=request.site
    )
    data = request.POST if request.method == "POST" else None

    def hand_off_form(data):
        return HandOffForm(
            data,
            site=request.site,
            exclude_user_id=arrival.staff_id,
            initial={"revision": arrival.revision},
        )

    form = hand_off_form(data)
    # The note for the next team member is clinical text: kept with the visit, never logged.
    note_form = HandOffNoteForm(data)
    if request.method == "POST" and form.is_valid() and note_form.is_valid():
        try:
            visit_services.visit_hand_off(
                arrival=arrival,
                by=request.user,
                revision=form.cleaned_data["revision"],
                to_user=form.cleaned_data["to_user"],
                note=note_form.cleaned_data["note"],
            )
        except (QueueError, VisitError) as error:
            messages.warning(request, error.message)
            if not note_form.cleaned_data["note"].strip():
                return redirect("queues:board")
            # Nothing was handed off: the page again as it is now, with the note they typed.
            arrival.refresh_from_db()
            form = hand_off_form(None)
        else:
            language_message(request, _("hand-off note"), note_form.cleaned_data["note"])
            messages.success(
                request,
                _("%(ticket)s is now with %(who)s.")
                % {
                    "ticket": arrival.ticket,
                    "who": services.staff_label(form.cleaned_data["to_user"]),
                },
            )
            return redirect("queues:board")
    return render(
        request,
        "queues/hand_off.html",
        {"arrival": arrival, "form": form, "note_form": note_form},
    )


@never_cache
@site_permission_required("queue.close_day")
def close_day(request):
    if request.method == "POST":
        closed = services.queue_close_day(site=request.site, by=request.user)
        messages.success(
            request,
            _("Day closed. %(count)d not seen yet recorded as left before being seen.")
            % {"count": closed},
        )
        return redirect("queues:board")
    snapshot = queue_snapshot(site=request.site)
    not_seen = snapshot.waiting + [a for a in snapshot.in_progress if a.state == State.CALLED]
    return render(request, "queues/close_day.html", {"not_seen": not_seen})


# --- waiting-room display (no login: a secret link per site) --------------------------------


def _display_site(token: str) -> Site:
    return get_object_or_404(Site, display_token=token, is_active=True)


@never_cache
@require_GET
def display(request, token: str):
    site = _display_site(token)
    return render(
        request,
        "queues/display.html",
        {
            "site": site,
            "display": display_snapshot(site=site),
            "token": token,
        },
    )


@never_cache
@require_GET
def display_live(request, token: str):
    snapshot = display_snapshot(site=_display_site(token))
    html = render_to_string("queues/_display_live.html", {"display": snapshot})
    return JsonResponse({"type": "snapshot", "version": snapshot.version, "html": html})
