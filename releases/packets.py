"""What a release packet contains, built item by item from exactly the granted scope.

`packet_items` reads the record for each granted scope category and nothing else: a category
outside the scope is never queried, so its data cannot appear (it is absent, not blanked).
Each item carries its type, id and date and the lines printed for it; the HTML and the PDF
are both drawn from the same items, and the items (without text) are the stored manifest.

Every packet also carries the §2.32 notice against re-disclosure and a plain statement of
the consent's scope. Nothing here decides whether a release may happen, and nothing here can
be used without the gate's decision: the public builders (`build_packet`, `packet_pdf`,
`packet_document`, `export_items`) take the `Permit` that releases.gate issues with a granted
decision, and build only what it says (its person, recipient, request, packet and scope),
once; anything else raises releases.gate.NotPermitted. The functions with a leading
underscore are this module's own.
"""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.translation import gettext as _

from releases.gate import NotPermitted, Permit, redeem
from releases.models import Consent, ReleasePacket, ReleaseRequest, Scope
from visits.models import Addendum, Goal, GoalProgress, MedicationEvent, ToxScreen, Visit

# 42 CFR §2.32(a)(1), "Statement 1", as revised in 2024 (89 FR 12472, compliance from 16 Feb
# 2026), word for word from the eCFR: RELEASES.md asks for "the §2.32 notice against
# re-disclosure" and to check the wording against the current eCFR. Kept verbatim and
# untranslated on purpose: it is legal text. The regulation sets (i)-(iii) as their own
# paragraphs; they are kept in one string (the stored notice) and shown as such.
REDISCLOSURE_NOTICE = (
    "This record which has been disclosed to you is protected by Federal confidentiality "
    "rules (42 CFR part 2). These rules prohibit you from using or disclosing this record, or "
    "testimony that describes the information contained in this record, in any civil, "
    "criminal, administrative, or legislative proceedings by any Federal, State, or local "
    "authority, against the patient, unless authorized by the consent of the patient, except "
    "as provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR "
    "2.64 or 2.65. In addition, the Federal rules prohibit you from making any other use or "
    "disclosure of this record unless at least one of the following applies:\n"
    "(i) Further use or disclosure is expressly permitted by the written consent of the "
    "individual whose information is being disclosed in this record or as otherwise "
    "permitted by 42 CFR part 2.\n"
    "(ii) You are a covered entity or business associate and have received the record for "
    "treatment, payment, or health care operations, or\n"
    "(iii) You have received the record from a covered entity or business associate as "
    "permitted by 45 CFR part 164, subparts A and E.\n"
    "A general authorization for the release of medical or other information is NOT "
    "sufficient to meet the required elements of written consent to further use or "
    "redisclose the record (see 42 CFR 2.31)."
)

# The order sections appear in, whatever order the scope was given in.
SCOPE_ORDER = [s.value for s in Scope]


@dataclass(frozen=True)
class Item:
    type: str
    id: int | None
    date: str  # ISO date, "" when the item has none
    lines: tuple[str, ...] = field(default_factory=tuple)

    def manifest_entry(self) -> dict:
        return {"type": self.type, "id": self.id, "date": self.date}


@dataclass(frozen=True)
class Section:
    scope: str
    title: str
    items: tuple[Item, ...]
    empty_text: str = ""


@dataclass(frozen=True)
class PacketContent:
    """Everything that goes out. `sections` are exactly the granted scope, in SCOPE_ORDER."""

    person_name: str
    person_dob: str
    site_name: str
    recipient: str
    purpose: str
    period: str
    scope_statement: tuple[str, ...]
    sections: tuple[Section, ...]
    notice: str = REDISCLOSURE_NOTICE
    heading: str = ""
    generated: str = ""
    statement_title: str = ""  # default: "What the consent covers"

    @property
    def manifest(self) -> list[dict]:
        return [item.manifest_entry() for s in self.sections for item in s.items]


def _in_period(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day <= end)


def _local(dt, tz) -> date:
    return timezone.localdate(dt, tz)


def _visits(person, site):
    return Visit.objects.filter(person=person, site=site).order_by("started_at", "pk")


def _attendance(person, site, start, end) -> list[Item]:
    items = []
    for visit in _visits(person, site):
        day = _local(visit.started_at, site.tz)
        if _in_period(day, start, end):
            items.append(Item("attendance", visit.pk, day.isoformat(), (day.isoformat(),)))
    return items


def _medications(person, site, start, end) -> list[Item]:
    items = []
    events = MedicationEvent.objects.filter(visit__person=person, visit__site=site).order_by(
        "recorded_at", "pk"
    )
    for event in events:
        day = _local(event.recorded_at, site.tz)
        if _in_period(day, start, end):
            text = _("%(date)s: %(medication)s, %(dose)s, %(days)d days' supply (%(how)s)") % {
                "date": day.isoformat(),
                "medication": event.get_medication_display(),
                "dose": event.dose,
                "days": event.days_supply,
                "how": event.get_action_display().lower(),
            }
            items.append(Item("medication", event.pk, day.isoformat(), (text,)))
    return items


def _tox(person, site, start, end) -> list[Item]:
    # Results only: the conversation around a screen is not a "result" and is not released.
    items = []
    screens = (
        ToxScreen.objects.filter(visit__person=person, visit__site=site)
        .prefetch_related("results")
        .order_by("collected_on", "pk")
    )
    for screen in screens:
        if not _in_period(screen.collected_on, start, end):
            continue
        lines = [f"{screen.collected_on.isoformat()}: {screen.get_specimen_display()}"]
        lines += [
            f"{r.get_substance_display()}: {r.get_result_display()}" for r in screen.results.all()
        ]
        items.append(Item("tox", screen.pk, screen.collected_on.isoformat(), tuple(lines)))
    return items


def _goals(person, site, start, end) -> list[Item]:
    items = []
    goals = Goal.objects.filter(person=person).order_by("set_on", "pk")
    progress = GoalProgress.objects.filter(goal__person=person).order_by("on", "pk")
    steps: dict[int, list[GoalProgress]] = {}
    for step in progress:
        if _in_period(step.on, start, end):
            steps.setdefault(step.goal_id, []).append(step)
    words = {goal.pk: goal.words for goal in goals}
    for goal in goals:
        # A goal set in the period; progress in the period goes with its goal's words.
        if _in_period(goal.set_on, start, end):
            text = _("Set %(date)s (%(status)s): %(words)s") % {
                "date": goal.set_on.isoformat(),
                "status": goal.get_status_display().lower(),
                "words": goal.words,
            }
            items.append(Item("goal", goal.pk, goal.set_on.isoformat(), (text,)))
    for goal_id, goal_steps in steps.items():
        for step in goal_steps:
            text = _("%(date)s, on “%(goal)s”: %(note)s") % {
                "date": step.on.isoformat(),
                "goal": words[goal_id],
                "note": step.note,
            }
            items.append(Item("goal_progress", step.pk, step.on.isoformat(), (text,)))
    return items


def _visit_notes(person, site, start, end) -> list[Item]:
    items = []
    for visit in _visits(person, site).prefetch_related("addenda"):
        day = _local(visit.started_at, site.tz)
        if not _in_period(day, start, end):
            continue
        if visit.note.strip():
            items.append(
                Item("visit_note", visit.pk, day.isoformat(), (day.isoformat(), visit.note))
            )
        addenda: Iterable[Addendum] = visit.addenda.all()
        for addendum in addenda:
            written = _local(addendum.written_at, site.tz)
            items.append(
                Item(
                    "addendum",
                    addendum.pk,
                    written.isoformat(),
                    (_("Addendum of %(date)s") % {"date": written.isoformat()}, addendum.text),
                )
            )
    return items


def _diagnoses(person, site, start, end) -> list[Item]:
    # This system records no diagnoses; say so rather than leave the reader guessing.
    return [Item("diagnoses", None, "", (_("No diagnoses are recorded in this system."),))]


def _other(consent: Consent | None) -> list[Item]:
    described = consent.scope_other.strip() if consent is not None else ""
    text = (
        _(
            "Other information, as the consent describes it: %(what)s. Supplied separately by "
            "the privacy officer; it is not drawn from this record."
        )
        % {"what": described}
        if described
        else _("The consent describes no other information.")
    )
    return [Item("other", None, "", (text,))]


_BUILDERS = {
    Scope.ATTENDANCE: _attendance,
    Scope.MEDICATIONS: _medications,
    Scope.TOX: _tox,
    Scope.GOALS: _goals,
    Scope.VISIT_NOTES: _visit_notes,
    Scope.DIAGNOSES: _diagnoses,
}


def scope_labels(scope: Iterable[str]) -> list[str]:
    labels = dict(Scope.choices)
    return [str(labels[s]) for s in SCOPE_ORDER if s in set(scope)]


def consent_scope_statement(consent: Consent | None) -> tuple[str, ...]:
    """A plain statement of what the consent covers, to travel with every release."""
    if consent is None:
        return ()
    lines = [
        _("Consent number %(pk)s, signed %(date)s by %(who)s.")
        % {
            "pk": consent.pk,
            "date": consent.signed_on.isoformat(),
            "who": consent.get_signed_by_display().lower(),
        },
        _("It allows %(site)s to disclose: %(scope)s.")
        % {"site": consent.site.name, "scope": ", ".join(scope_labels(consent.scope or []))},
    ]
    if consent.scope_other:
        lines.append(_("Other information described: %(what)s.") % {"what": consent.scope_other})
    lines.append(
        _("To: %(recipients)s.")
        % {"recipients": "; ".join(str(r) for r in consent.recipients.all())}
    )
    lines.append(
        _("For: %(purposes)s.") % {"purposes": "; ".join(p.text for p in consent.purposes.all())}
    )
    expiry = []
    if consent.expires_on:
        expiry.append(_("at the end of %(date)s") % {"date": consent.expires_on.isoformat()})
    if consent.expiry_event:
        expiry.append(_("when %(event)s") % {"event": consent.expiry_event})
    lines.append(_("It expires %(when)s.") % {"when": _(" or ").join(expiry)})
    lines.append(_("It can be revoked: %(how)s") % {"how": consent.revocation_statement})
    return tuple(lines)


def _packet_content(
    *,
    person,
    site,
    recipient,
    purpose: str,
    scope: Iterable[str],
    consent: Consent | None,
    period_start: date | None = None,
    period_end: date | None = None,
    heading: str = "",
    statement: tuple[str, ...] | None = None,
    statement_title: str = "",
    now=None,
) -> PacketContent:
    """Read exactly the categories in `scope` (already granted) and nothing else."""
    granted = set(scope)
    labels = dict(Scope.choices)
    sections = []
    for key in SCOPE_ORDER:
        if key not in granted:
            continue  # outside the scope: never read, so never present
        if key == Scope.OTHER:
            items = _other(consent)
        else:
            items = _BUILDERS[key](person, site, period_start, period_end)
        sections.append(
            Section(
                scope=key,
                title=str(labels[key]),
                items=tuple(items),
                empty_text=_("Nothing recorded in the period.")
                if (period_start or period_end)
                else _("Nothing recorded."),
            )
        )
    if period_start or period_end:
        period = _("%(start)s to %(end)s") % {
            "start": period_start.isoformat() if period_start else _("the first record"),
            "end": period_end.isoformat() if period_end else _("today"),
        }
    else:
        period = _("All records")
    now = now or timezone.now()
    return PacketContent(
        person_name=person.name,
        person_dob=person.date_of_birth.isoformat() if person.date_of_birth else "",
        site_name=site.name,
        recipient=str(recipient),
        purpose=purpose,
        period=period,
        scope_statement=statement if statement is not None else consent_scope_statement(consent),
        sections=tuple(sections),
        heading=heading or _("Release of information"),
        generated=timezone.localtime(now, site.tz).strftime("%Y-%m-%d %H:%M %Z"),
        statement_title=statement_title or _("What the consent covers"),
    )


def _packet_html(content: PacketContent) -> str:
    return render_to_string("releases/packet_document.html", {"c": content})


def packet_sha256(html: str) -> str:
    return hashlib.sha256(html.encode("utf-8")).hexdigest()


def _content_from_manifest(*, manifest_doc: dict) -> PacketContent:
    """Rebuild the content stored with a packet (for the PDF), exactly as generated."""
    sections = tuple(
        Section(
            scope=s["scope"],
            title=s["title"],
            items=tuple(Item(i["type"], i["id"], i["date"], tuple(i["lines"])) for i in s["items"]),
            empty_text=s.get("empty_text", ""),
        )
        for s in manifest_doc["sections"]
    )
    head = manifest_doc["head"]
    return PacketContent(
        person_name=head["person_name"],
        person_dob=head["person_dob"],
        site_name=head["site_name"],
        recipient=head["recipient"],
        purpose=head["purpose"],
        period=head["period"],
        scope_statement=tuple(head["scope_statement"]),
        sections=sections,
        notice=head["notice"],
        heading=head["heading"],
        generated=head["generated"],
        statement_title=head.get("statement_title", ""),
    )


def _manifest_document(content: PacketContent) -> dict:
    """What is stored as the packet's manifest: the item list (type, id, date) and, so the
    PDF is drawn from the very same items, their printed lines."""
    return {
        "items": content.manifest,
        "head": {
            "person_name": content.person_name,
            "person_dob": content.person_dob,
            "site_name": content.site_name,
            "recipient": content.recipient,
            "purpose": content.purpose,
            "period": content.period,
            "scope_statement": list(content.scope_statement),
            "notice": content.notice,
            "heading": content.heading,
            "generated": content.generated,
            "statement_title": content.statement_title,
        },
        "sections": [
            {
                "scope": s.scope,
                "title": s.title,
                "empty_text": s.empty_text,
                "items": [
                    {"type": i.type, "id": i.id, "date": i.date, "lines": list(i.lines)}
                    for i in s.items
                ],
            }
            for s in content.sections
        ],
    }


FONT_DIR = Path(__file__).resolve().parent / "fonts"
# DejaVu Sans (free licence, releases/fonts/LICENSE-DejaVu.txt), bundled so the PDF never
# depends on the machine's fonts: it draws Latin, Greek, Cyrillic and more, so "Zoë Nguyễn"
# or "Łukasz" come out as written. A PDF core font would be Latin-1 only. DejaVu has no CJK
# glyphs: fpdf2 logs such characters as missing (the HTML packet shows them).
FONT_FAMILY = "DejaVuSans"
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}


def _render_pdf(content: PacketContent, *, compress: bool = True) -> bytes:
    """The same items as the HTML, as a PDF (fpdf2), in a bundled Unicode font."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(format="Letter")
    pdf.set_compression(compress)
    for style, name in FONT_FILES.items():
        pdf.add_font(FONT_FAMILY, style=style, fname=str(FONT_DIR / name))
    pdf.set_title(content.heading)
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()

    def para(text: str, *, size: int = 10, style: str = "", gap: float = 1) -> None:
        pdf.set_font(FONT_FAMILY, style=style, size=size)
        pdf.multi_cell(0, size * 0.5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(gap)

    para(content.heading, size=16, style="B", gap=2)
    para(_("From: %(site)s") % {"site": content.site_name})
    para(_("To: %(recipient)s") % {"recipient": content.recipient})
    para(_("About: %(name)s") % {"name": content.person_name})
    if content.person_dob:
        para(_("Date of birth: %(dob)s") % {"dob": content.person_dob})
    para(_("Purpose: %(purpose)s") % {"purpose": content.purpose})
    para(_("Period: %(period)s") % {"period": content.period})
    para(_("Prepared: %(when)s") % {"when": content.generated}, gap=3)
    para(_("Notice against re-disclosure (42 CFR 2.32)"), size=12, style="B")
    para(content.notice, size=9, gap=3)
    para(content.statement_title or _("What the consent covers"), size=12, style="B")
    for line in content.scope_statement:
        para(line, size=9)
    pdf.ln(2)
    for section in content.sections:
        para(section.title, size=12, style="B")
        if not section.items:
            para(section.empty_text)
        for item in section.items:
            para("\n".join(item.lines))
        pdf.ln(2)
    return bytes(pdf.output())


# --- the public builders: each takes the gate's permit -------------------------------------------


@dataclass(frozen=True)
class BuiltPacket:
    """A packet document as built: what is stored and handed over."""

    html: str
    manifest: dict
    sha256: str


def build_packet(permit: Permit, *, now=None) -> BuiltPacket:
    """Build the packet document a granted decision allows: preparing a packet from a request
    (path "packet_generate") or a medical emergency release ("emergency_release"). Everything
    comes from the permit (person, site, recipient, purpose, granted scope, consent, the
    request's period); the caller passes nothing that could widen it."""
    permit = redeem(permit, paths=("packet_generate", "emergency_release"))
    if permit.emergency is not None:
        facts = permit.emergency
        to = _("%(name)s, %(recipient)s") % {
            "name": facts.personnel_name,
            "recipient": permit.recipient,
        }
        by = facts.released_by
        content = _packet_content(
            person=permit.person,
            site=permit.site,
            recipient=to,
            purpose=permit.purpose,
            scope=permit.scope,
            consent=None,
            statement=(
                _("Released without consent in a medical emergency (42 CFR 2.51)."),
                _("Nature of the emergency: %(reason)s") % {"reason": facts.nature},
                _("Received by: %(name)s, %(recipient)s")
                % {"name": facts.personnel_name, "recipient": permit.recipient},
                _("Released by: %(by)s") % {"by": by.get_full_name() or by.get_username()},
            ),
            heading=_("Release in a medical emergency (42 CFR 2.51)"),
            statement_title=_("On what basis"),
            now=now,
        )
    else:
        if permit.request is None or permit.consent is None:
            raise NotPermitted("A packet is prepared from a request under a consent.")
        # The period as stored, not as a caller's copy of the request may say.
        request = ReleaseRequest.objects.get(pk=permit.request.pk)
        content = _packet_content(
            person=permit.person,
            site=permit.site,
            recipient=permit.recipient,
            purpose=request.purpose,
            scope=permit.scope,
            consent=permit.consent,
            period_start=request.period_start,
            period_end=request.period_end,
            now=now,
        )
    html = _packet_html(content)
    return BuiltPacket(html=html, manifest=_manifest_document(content), sha256=packet_sha256(html))


def _stored(permit: Permit, packet: ReleasePacket, path: str) -> ReleasePacket:
    permit = redeem(permit, paths=(path,), packet=packet)
    stored = ReleasePacket.objects.get(pk=packet.pk)
    sections = {s["scope"] for s in stored.manifest.get("sections", [])}
    if not sections <= set(permit.scope) or packet_sha256(stored.html) != stored.sha256:
        raise NotPermitted("The stored packet is not what the permit allows.")
    return stored


def packet_document(permit: Permit, packet: ReleasePacket) -> str:
    """The stored HTML of a packet, to show or print (path "packet_view")."""
    return _stored(permit, packet, "packet_view").html


def packet_pdf(permit: Permit, packet: ReleasePacket, *, compress: bool = True) -> bytes:
    """The PDF of a stored packet (path "packet_pdf"), drawn from the same stored items as its
    HTML."""
    stored = _stored(permit, packet, "packet_pdf")
    return _render_pdf(_content_from_manifest(manifest_doc=stored.manifest), compress=compress)


def export_items(permit: Permit, *, start: date | None, end: date | None) -> list[Item]:
    """The items of one person's granted scope for a bulk export (path "export_attendance";
    attendance is the only scope an export reads today)."""
    permit = redeem(permit, paths=("export_attendance",))
    if set(permit.scope) != {Scope.ATTENDANCE}:
        raise NotPermitted("An export reads attendance only.")
    return _attendance(permit.person, permit.site, start, end)
