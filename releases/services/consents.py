"""Consents (42 CFR §2.31 elements), revocations and expiry events.

A consent is a signed record: it is written once, with every required element, and never
edited (there is no service to change one; corrections are a new consent). Revocations and
expiry events are rows of their own and take effect at once, because the gate decides every
release from current data.
"""

import base64
import binascii
import logging
import struct
import uuid
import zlib
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import PurePath

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from clinic.models import Person, Site
from clinic.people import with_merged
from clinic.sites import can
from releases.errors import ReleaseError
from releases.gate import normalise_purpose
from releases.models import (
    Consent,
    ConsentPurpose,
    ConsentRecipientCategory,
    ExpiryEventRecord,
    Recipient,
    Revocation,
    Scope,
)
from releases.services.registry import MANAGE, require_privacy_officer

logger = logging.getLogger(__name__)

STANDARD_REVOCATION_STATEMENT = gettext_lazy(
    "I understand that I may revoke (take back) this consent at any time, except for "
    "information that has already been released because of it. I can revoke it by telling "
    "any staff member at the clinic or by writing to the clinic's privacy officer. If I tell "
    "staff out loud, nothing more is released until my revocation is written down."
)

PURPOSE_MAX = 300
PURPOSES_MAX = 10
SCOPE_OTHER_MAX = 500
STATEMENT_MAX = 2000
EVENT_MAX = 300
REPRESENTATIVE_MAX = 200
BASIS_MAX = 300
NOTE_MAX = 2000

# A drawn signature: a PNG data URL, no bigger than a small canvas needs.
PNG_PREFIX = "data:image/png;base64,"
SIGNATURE_MAX_CHARS = 400_000
SIGNATURE_MIN_BYTES = 100
# The pad is 600 x 200; the limit keeps decoding cheap (the check is pure Python).
SIGNATURE_MAX_WIDTH = 1200
SIGNATURE_MAX_HEIGHT = 600
SIGNATURE_MIN_INK_PIXELS = 30
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A scanned signed form.
SCAN_MAX_BYTES = 10 * 1024 * 1024
# The whole request that carries a scan (clinic.edge): room for a scan somewhat over the limit,
# so that it gets the form's own message rather than a bare refusal, and two minutes for it to
# arrive over a slow connection.
SCAN_REQUEST_MAX_BYTES = 2 * SCAN_MAX_BYTES + 1024 * 1024
SCAN_REQUEST_SECONDS = 120
SCAN_KINDS = {  # extension: magic bytes at the start of the file
    ".pdf": (b"%PDF-",),
    ".png": (PNG_MAGIC,),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
}


def _site_today(site: Site) -> date:
    return timezone.localdate(timezone.now(), site.tz)


def _limited(value, *, max_length: int, code: str, label: str) -> str:
    value = (value or "").strip()
    if len(value) > max_length:
        raise ReleaseError(
            code,
            _("%(label)s can be at most %(max)d characters.") % {"label": label, "max": max_length},
        )
    return value


# --- signatures -------------------------------------------------------------------------------


def _png_pixels_with_ink(png: bytes) -> int:
    """Decode an 8-bit, non-interlaced PNG enough to count pixels that differ from the first
    one (the blank background). Raises ValueError for anything that is not such a PNG."""
    if not png.startswith(PNG_MAGIC):
        raise ValueError("not a PNG")
    pos, header, idat = len(PNG_MAGIC), None, []
    while pos < len(png):
        if pos + 12 > len(png):
            raise ValueError("truncated chunk")
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        crc = png[pos + 8 + length : pos + 12 + length]
        if len(body) != length or len(crc) != 4:
            raise ValueError("truncated chunk")
        if zlib.crc32(kind + body) != struct.unpack(">I", crc)[0]:
            raise ValueError("bad checksum")
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    else:
        raise ValueError("no IEND")
    if header is None or not idat:
        raise ValueError("no image data")
    width, height, depth, colour, _compression, _filter, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if channels is None or depth != 8 or interlace != 0:
        raise ValueError("unsupported PNG kind")
    if not (0 < width <= SIGNATURE_MAX_WIDTH and 0 < height <= SIGNATURE_MAX_HEIGHT):
        raise ValueError("unreasonable size")
    stride = width * channels
    expected = height * (stride + 1)
    inflater = zlib.decompressobj()
    raw = inflater.decompress(b"".join(idat), expected + 1)  # no decompression bombs
    if len(raw) != expected:
        raise ValueError("wrong amount of image data")
    return _count_ink(raw, width=width, height=height, bpp=channels)


def _count_ink(raw: bytes, *, width: int, height: int, bpp: int) -> int:
    stride = width * bpp
    previous = bytearray(stride)
    background = None
    ink = 0
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        row = bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                row[i] = (row[i] + row[i - bpp]) & 0xFF
        elif kind == 2:
            for i in range(stride):
                row[i] = (row[i] + previous[i]) & 0xFF
        elif kind == 3:
            for i in range(stride):
                left = row[i - bpp] if i >= bpp else 0
                row[i] = (row[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b = previous[i]
                c = previous[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                row[i] = (row[i] + pred) & 0xFF
        elif kind != 0:
            raise ValueError("unknown row filter")
        if background is None:
            background = bytes(row[:bpp])
            blank_row = background * width
        if row != blank_row:
            ink += sum(1 for x in range(0, stride, bpp) if row[x : x + bpp] != background)
        previous = row
    return ink


def check_signature_image(data_url: str) -> str:
    """A drawn signature must be a real PNG data URL of reasonable size with something drawn
    on it. Returns the data URL unchanged."""
    data_url = (data_url or "").strip()
    invalid = ReleaseError(
        "signature_invalid",
        _("The signature drawn on the screen could not be read. Please ask them to sign again."),
    )
    if not data_url.startswith(PNG_PREFIX) or len(data_url) > SIGNATURE_MAX_CHARS:
        raise invalid
    try:
        png = base64.b64decode(data_url[len(PNG_PREFIX) :], validate=True)
        if len(png) < SIGNATURE_MIN_BYTES:
            raise ValueError("too small")
        ink = _png_pixels_with_ink(png)
    except (ValueError, binascii.Error, zlib.error, struct.error) as exc:
        raise invalid from exc
    if ink < SIGNATURE_MIN_INK_PIXELS:
        raise ReleaseError(
            "signature_blank", _("The signature box is empty. Please ask them to sign.")
        )
    return data_url


def check_scanned_form(upload: UploadedFile) -> UploadedFile:
    """A scanned signed form: PDF, PNG or JPEG (by its content, not just its name), at most
    10 MB. It is stored under a random name, so no one's name ends up in a file name."""
    suffix = PurePath(upload.name or "").suffix.lower()
    if suffix not in SCAN_KINDS:
        raise ReleaseError("scan_kind", _("The scanned form must be a PDF, PNG or JPEG file."))
    if upload.size is None or upload.size > SCAN_MAX_BYTES:
        raise ReleaseError("scan_too_big", _("The scanned form can be at most 10 MB."))
    if upload.size == 0:
        raise ReleaseError("scan_empty", _("The scanned form is empty."))
    upload.seek(0)
    head = upload.read(16)
    upload.seek(0)
    if not any(head.startswith(magic) for magic in SCAN_KINDS[suffix]):
        raise ReleaseError("scan_kind", _("The scanned form must be a PDF, PNG or JPEG file."))
    upload.name = f"{uuid.uuid4().hex}{'.jpg' if suffix == '.jpeg' else suffix}"
    return upload


# --- recording a consent ----------------------------------------------------------------------


def _clean_purposes(purposes: Iterable[str]) -> list[str]:
    cleaned, seen = [], set()
    for text in purposes or ():
        text = " ".join((text or "").split())
        if not text:
            continue
        if len(text) > PURPOSE_MAX:
            raise ReleaseError(
                "purpose_too_long",
                _("Each purpose can be at most %(max)d characters.") % {"max": PURPOSE_MAX},
            )
        if normalise_purpose(text) not in seen:
            seen.add(normalise_purpose(text))
            cleaned.append(text)
    if not cleaned:
        raise ReleaseError("purpose_required", _("Please write each purpose of the release."))
    if len(cleaned) > PURPOSES_MAX:
        raise ReleaseError(
            "too_many_purposes",
            _("A consent can name at most %(max)d purposes.") % {"max": PURPOSES_MAX},
        )
    return cleaned


def _clean_recipients(recipients: Sequence[Recipient], *, site: Site) -> list[Recipient]:
    recipients = list(dict.fromkeys(recipients or ()))
    if not recipients:
        raise ReleaseError(
            "recipient_required", _("Please choose who may receive the information.")
        )
    for recipient in recipients:
        if not isinstance(recipient, Recipient) or recipient.pk is None:
            # Never a free-text recipient: only rows of the registry.
            raise ReleaseError("recipient_unknown", _("Please choose recipients from the list."))
        if recipient.site_id != site.pk or not recipient.is_active:
            raise ReleaseError("recipient_unknown", _("Please choose recipients from the list."))
    if len(recipients) > 1 and any(r.is_criminal_legal for r in recipients):
        raise ReleaseError(
            "criminal_legal_bundled",
            _(
                "A consent to a court, probation, parole, pretrial, police, prosecutor or "
                "corrections recipient must name that one recipient and nothing else. Record a "
                "separate consent for each of the other recipients."
            ),
        )
    return recipients


def _clean_scope(scope: Iterable[str], scope_other: str) -> tuple[list[str], str]:
    wanted = sorted(set(scope or ()))
    if not wanted:
        raise ReleaseError(
            "scope_required", _("Please choose what information the consent covers.")
        )
    if not set(wanted) <= set(Scope.values):
        raise ReleaseError("scope_unknown", _("Please choose information from the list."))
    scope_other = _limited(
        scope_other, max_length=SCOPE_OTHER_MAX, code="scope_other_too_long", label=_("Other")
    )
    if Scope.OTHER in wanted and not scope_other:
        raise ReleaseError(
            "scope_other_required", _("Please describe the other information it covers.")
        )
    if Scope.OTHER not in wanted and scope_other:
        raise ReleaseError(
            "scope_other_unticked",
            _(
                "Tick “Other (described)” too, or clear the description: a consent covers "
                "exactly what it names."
            ),
        )
    return wanted, scope_other


def consent_record(
    *,
    person: Person,
    site: Site,
    by,
    recipients: Sequence[Recipient],
    purposes: Iterable[str],
    scope: Iterable[str],
    scope_other: str = "",
    revocation_statement: str,
    expires_on: date | None = None,
    expiry_event: str = "",
    signed_by: str,
    representative_name: str = "",
    representative_basis: str = "",
    signature_image: str = "",
    scanned_form: UploadedFile | None = None,
    signed_on: date | None,
    court_condition: bool = False,
    irrevocable_until: date | None = None,
    irrevocable_until_event: str = "",
    nonce: uuid.UUID | None = None,
) -> Consent:
    """Record a signed consent with every §2.31 element, or nothing at all.

    Everything is validated before anything is written; the consent, its recipients and its
    purposes are written in one transaction, and sealing it is the last step (from then on
    the database refuses any change to it, its recipients or its purposes). Locks nothing: a
    new consent changes no existing row. There is deliberately no service that edits a
    consent. The same form `nonce` twice returns the first consent, so a double tap on
    "Record" is harmless.
    """
    require_privacy_officer(by, site)
    if person.site_id != site.pk:
        raise ReleaseError("person_unknown", _("That person is not known at this site."))
    if person.merged_into_id is not None:
        raise ReleaseError(
            "person_merged",
            _("This record was merged into another record of the same person: use that record."),
        )
    if nonce is not None:
        first = _consent_for_nonce(site=site, person=person, nonce=nonce)
        if first is not None:
            return first
    today = _site_today(site)
    recipients = _clean_recipients(recipients, site=site)
    purposes = _clean_purposes(purposes)
    scope, scope_other = _clean_scope(scope, scope_other)
    revocation_statement = _limited(
        revocation_statement,
        max_length=STATEMENT_MAX,
        code="revocation_statement_too_long",
        label=_("How it can be revoked"),
    )
    if not revocation_statement:
        raise ReleaseError(
            "revocation_statement_required",
            _("The consent must say that it can be revoked, and how."),
        )

    if signed_on is None:
        raise ReleaseError("signed_on_required", _("Please enter the date it was signed."))
    if signed_on > today:
        raise ReleaseError("signed_on_future", _("The date signed cannot be in the future."))

    expiry_event = _limited(
        expiry_event, max_length=EVENT_MAX, code="expiry_event_too_long", label=_("Event")
    )
    if expires_on is None and not expiry_event:
        raise ReleaseError(
            "expiry_required", _("Please give the date or the event when the consent ends.")
        )
    if expires_on is not None and expires_on < max(signed_on, today):
        raise ReleaseError(
            "expires_in_past", _("The consent would already have ended. Check the expiry date.")
        )

    if signed_by not in Consent.SignedBy.values:
        raise ReleaseError("signed_by_required", _("Please say who signed."))
    representative_name = _limited(
        representative_name,
        max_length=REPRESENTATIVE_MAX,
        code="representative_name_too_long",
        label=_("Representative's name"),
    )
    representative_basis = _limited(
        representative_basis,
        max_length=BASIS_MAX,
        code="representative_basis_too_long",
        label=_("Basis of their authority"),
    )
    if signed_by == Consent.SignedBy.REPRESENTATIVE:
        if not representative_name:
            raise ReleaseError(
                "representative_name_required", _("Please enter the representative's name.")
            )
        if not representative_basis:
            raise ReleaseError(
                "representative_basis_required",
                _("Please record the basis of the representative's authority."),
            )
    elif representative_name or representative_basis:
        raise ReleaseError(
            "representative_not_signer",
            _("The person signed themselves: leave the representative fields blank."),
        )

    signature_image = (signature_image or "").strip()
    if signature_image:
        signature_image = check_signature_image(signature_image)
    if scanned_form:
        scanned_form = check_scanned_form(scanned_form)
    if not signature_image and not scanned_form:
        raise ReleaseError(
            "signature_required",
            _("Please have it signed on the screen, or attach the scanned signed form."),
        )

    irrevocable_until_event = _limited(
        irrevocable_until_event,
        max_length=EVENT_MAX,
        code="irrevocable_event_too_long",
        label=_("Irrevocable until"),
    )
    if court_condition:
        if irrevocable_until is None and not irrevocable_until_event:
            raise ReleaseError(
                "irrevocable_until_required",
                _(
                    "A consent a court made a condition of release can be irrevocable only "
                    "until a stated date or event. Please give it."
                ),
            )
        if irrevocable_until is not None and irrevocable_until < signed_on:
            raise ReleaseError(
                "irrevocable_until_past",
                _("“Irrevocable until” cannot be before the date signed."),
            )
    elif irrevocable_until is not None or irrevocable_until_event:
        raise ReleaseError(
            "irrevocable_without_court",
            _("Only a consent a court made a condition of release can be irrevocable."),
        )

    try:
        with transaction.atomic():
            consent = _consent_write(
                person=person,
                site=site,
                by=by,
                recipients=recipients,
                purposes=purposes,
                nonce=nonce,
                fields={
                    "scope": scope,
                    "scope_other": scope_other,
                    "revocation_statement": revocation_statement,
                    "expires_on": expires_on,
                    "expiry_event": expiry_event,
                    "signed_by": signed_by,
                    "representative_name": representative_name,
                    "representative_basis": representative_basis,
                    "signature_image": signature_image,
                    "scanned_form": scanned_form or "",
                    "signed_on": signed_on,
                    "court_condition": court_condition,
                    "irrevocable_until": irrevocable_until if court_condition else None,
                    "irrevocable_until_event": irrevocable_until_event if court_condition else "",
                },
            )
    except IntegrityError:
        # Lost a race with the same form posted twice at once: the other one was recorded.
        first = _consent_for_nonce(site=site, person=person, nonce=nonce) if nonce else None
        if first is None:
            raise
        return first
    logger.info("Consent %s recorded for person %s by %s", consent.pk, person.pk, by.pk)
    return consent


def _consent_for_nonce(*, site: Site, person: Person, nonce: uuid.UUID) -> Consent | None:
    first = Consent.objects.filter(site=site, nonce=nonce).first()
    if first is not None and first.person_id != person.pk:
        raise ReleaseError("stale_form", _("This form was already used. Please start again."))
    return first


def _consent_write(*, person, site, by, recipients, purposes, nonce, fields) -> Consent:
    """Write the consent unsealed, its recipients and purposes, then seal it (last)."""
    consent = Consent.objects.create(
        person=person,
        site=site,
        recorded_by=by,
        recorded_at=timezone.now(),
        nonce=nonce,
        **fields,
    )
    consent.recipients.set(recipients)
    # The category each recipient has now, at signing: the consent holds only for it (a
    # recategorisation that commits a moment later makes the gate refuse, never allow).
    ConsentRecipientCategory.objects.bulk_create(
        [
            ConsentRecipientCategory(
                consent=consent, recipient=recipient, category=recipient.current_category
            )
            for recipient in recipients
        ]
    )
    ConsentPurpose.objects.bulk_create(
        [ConsentPurpose(consent=consent, text=text) for text in purposes]
    )
    Consent.objects.filter(pk=consent.pk).update(sealed=True)
    consent.sealed = True
    return consent


# --- revocation and expiry --------------------------------------------------------------------


def consent_revoke(
    *, consent: Consent, by, how: str, received_on: date | None, note: str = ""
) -> Revocation:
    """Record a revocation. Effective at once: the gate reads revocations at every release.

    Oral: an immediate hold until it is in writing. Written: revoked (and completes an earlier
    oral one). Locks the consent row so two revocations recorded at once are ordered.
    """
    require_privacy_officer(by, consent.site)
    if how not in Revocation.How.values:
        raise ReleaseError("how_required", _("Please say how the revocation was given."))
    if received_on is None:
        raise ReleaseError("received_on_required", _("Please enter the date it was received."))
    if received_on > _site_today(consent.site):
        raise ReleaseError("received_on_future", _("The date received cannot be in the future."))
    if received_on < consent.signed_on:
        raise ReleaseError(
            "received_before_signed",
            _("The date received cannot be before the consent was signed."),
        )
    note = _limited(note, max_length=NOTE_MAX, code="note_too_long", label=_("Note"))
    with transaction.atomic():
        Consent.objects.select_for_update().filter(pk=consent.pk).first()
        previous = set(Revocation.objects.filter(consent=consent).values_list("how", flat=True))
        if Revocation.How.WRITTEN in previous:
            raise ReleaseError("already_revoked", _("This consent is already revoked in writing."))
        if how == Revocation.How.ORAL and Revocation.How.ORAL in previous:
            raise ReleaseError(
                "already_held",
                _("This consent is already on hold. Record the written revocation when it comes."),
            )
        revocation = Revocation.objects.create(
            consent=consent,
            how=how,
            received_on=received_on,
            taken_by=by,
            note=note,
            recorded_at=timezone.now(),
        )
    logger.warning("Consent %s revoked (%s) by %s", consent.pk, how, by.pk)
    return revocation


STAFF_PERM = "clinic.view_person"  # front desk and care team: anyone who sees the person


def can_place_hold(user, site: Site | None) -> bool:
    """Any staff member of the site who works with people (front desk, care team) or the
    privacy officer, by role: a hold only ever stops releases, so no one is kept from it."""
    return can(user, STAFF_PERM, site) or can(user, MANAGE, site)


def consent_hold_place(*, person: Person, site: Site, by, note: str = "") -> list[Revocation]:
    """The person told a staff member they take back their consent: an oral revocation, so an
    immediate hold until it is in writing (RELEASES.md).

    Front desk and clinicians do not read consents, so the hold covers every consent of the
    person at this site that is not already revoked or held, those signed under a record merged
    into theirs included (the gate counts those for them too); the privacy officer then records
    the written revocation (or, if the person wants a consent to stand, a new consent). The
    gate refuses while a hold stands, from the moment this commits. Locks the person's
    consents, so a hold and a revocation recorded at once are ordered.
    """
    if not can_place_hold(by, site):
        raise ReleaseError("not_allowed", _("Only staff of this site can place a hold."))
    if person.site_id != site.pk:
        raise ReleaseError("person_unknown", _("That person is not known at this site."))
    note = _limited(note, max_length=NOTE_MAX, code="note_too_long", label=_("Note"))
    today = _site_today(site)
    held = []
    with transaction.atomic():
        consents = Consent.objects.select_for_update().filter(
            person_id__in=with_merged(person), site=site, sealed=True
        )
        for consent in consents.order_by("pk"):
            if Revocation.objects.filter(consent=consent).exists():
                continue  # already held or revoked
            held.append(
                Revocation.objects.create(
                    consent=consent,
                    how=Revocation.How.ORAL,
                    received_on=max(today, consent.signed_on),
                    taken_by=by,
                    note=note,
                    recorded_at=timezone.now(),
                )
            )
    logger.warning(
        "Oral revocation hold for person %s by %s: %d consents held", person.pk, by.pk, len(held)
    )
    return held


def consent_expiry_event_record(
    *, consent: Consent, by, happened_on: date | None, note: str = ""
) -> ExpiryEventRecord:
    """Staff record that the consent's expiry event happened: the consent has ended."""
    require_privacy_officer(by, consent.site)
    if not consent.expiry_event:
        raise ReleaseError("no_expiry_event", _("This consent ends on a date, not at an event."))
    if happened_on is None:
        raise ReleaseError("happened_on_required", _("Please enter when it happened."))
    if happened_on > _site_today(consent.site):
        raise ReleaseError("happened_on_future", _("The date cannot be in the future."))
    if happened_on < consent.signed_on:
        raise ReleaseError(
            "happened_before_signed", _("The date cannot be before the consent was signed.")
        )
    note = _limited(note, max_length=EVENT_MAX, code="note_too_long", label=_("Note"))
    with transaction.atomic():
        Consent.objects.select_for_update().filter(pk=consent.pk).first()
        if ExpiryEventRecord.objects.filter(consent=consent).exists():
            raise ReleaseError("already_recorded", _("That event is already recorded."))
        record = ExpiryEventRecord.objects.create(
            consent=consent,
            happened_on=happened_on,
            recorded_by=by,
            recorded_at=timezone.now(),
            note=note,
        )
    logger.warning("Consent %s ended by its event, recorded by %s", consent.pk, by.pk)
    return record


def consent_status(consent: Consent, *, today: date | None = None) -> str:
    """For display only (the gate decides releases): revoked, held, expired or in force."""
    today = today or _site_today(consent.site)
    hows = {r.how for r in consent.revocations.all()}
    if Revocation.How.WRITTEN in hows:
        return "revoked"
    if Revocation.How.ORAL in hows:
        return "held"
    if consent.expires_on is not None and today > consent.expires_on:
        return "expired"
    if consent.expiry_event and consent.expiry_events.exists():
        return "expired"
    return "in_force"
