"""A packet document can be built only from the gate's decision (issue 12, item 7).

releases.packets' builders take the Permit that releases.gate issues with a granted decision,
bound to its disclosure-log row, path, person, recipient, request, packet and scope, spent
once. Anything else raises NotPermitted and builds nothing.
"""

import copy
import pickle
import re
from pathlib import Path

import pytest
from django.conf import settings

from releases import gate, packets
from releases.gate import NotPermitted, Permit
from releases.models import Category, DisclosureLog, ReleasePacket, Scope
from releases.services import outgoing as services
from tests.releases.factories import approve_twice, make_consent, make_recipient
from tests.releases.outgoing_data import drug_court, make_record, pdf_text

pytestmark = pytest.mark.django_db

ATT = [Scope.ATTENDANCE]


@pytest.fixture
def person(site):
    return make_record(site=site).person


def prepared(person, clinician, *, recipient=None):
    """A packet prepared through the gate for an approved drug-court request."""
    court = recipient or drug_court(person.site)
    make_consent(person=person, recipients=[court], purposes=["attendance"], scope=ATT)
    request = services.release_request_create(
        site=person.site,
        person=person,
        recipient=court,
        purpose="attendance",
        scope=ATT,
        by=clinician,
    )
    approve_twice(request, site=person.site)
    return services.packet_generate(request=request, by=clinician)


def permit_for(packet, path, by):
    """What packet_open asks the gate for: a decision for this packet, now."""
    request = packet.request
    decision = gate.release_attempt(
        site=request.site,
        path=path,
        asked_by=by,
        person=request.person,
        recipient=request.recipient,
        purpose=request.purpose,
        scope=request.scope,
        request=request,
        packet=packet,
    )
    assert decision.granted
    return decision.permit


def test_the_normal_path_builds_from_the_gates_permit(person, clinician):
    packet = prepared(person, clinician)
    assert packet.html and packet.sha256 == packets.packet_sha256(packet.html)
    assert packets.packet_document(permit_for(packet, "packet_view", clinician), packet) == (
        packet.html
    )
    pdf = packets.packet_pdf(permit_for(packet, "packet_pdf", clinician), packet)
    assert "Attendance and visit dates" in pdf_text(pdf)
    _packet, via_service = services.packet_open(packet=packet, by=clinician, path="packet_pdf")
    assert via_service.startswith(b"%PDF")


@pytest.mark.parametrize("builder", ["packet_pdf", "packet_document"])
def test_a_stored_packet_is_never_drawn_without_a_permit(person, clinician, builder):
    packet = prepared(person, clinician)
    build = getattr(packets, builder)
    granted = gate.release_decide(
        person=person,
        recipient=packet.request.recipient,
        purpose="attendance",
        scope=ATT,
        request=packet.request,
    )
    assert granted.granted and granted.permit is None  # deciding alone issues no permit
    forged = gate.Decision(gate.GRANTED, "consent_valid", packet.consent, tuple(ATT))
    for anything in (None, packet, granted, forged, forged.permit, object(), "packet_pdf"):
        with pytest.raises(NotPermitted):
            build(anything, packet)


def test_a_packet_is_never_built_without_a_permit(person, clinician):
    before = DisclosureLog.objects.count()
    for anything in (None, object(), gate.Decision(gate.GRANTED, "consent_valid")):
        with pytest.raises(NotPermitted):
            packets.build_packet(anything)
    with pytest.raises(NotPermitted):
        packets.export_items(None, start=None, end=None)
    assert DisclosureLog.objects.count() == before


def test_a_permit_is_made_only_by_the_gate_and_cannot_be_copied(person, clinician):
    packet = prepared(person, clinician)
    with pytest.raises(NotPermitted):
        Permit(object(), **dict.fromkeys(Permit.FIELDS))
    permit = permit_for(packet, "packet_pdf", clinician)
    for duplicate in (copy.copy, copy.deepcopy, pickle.dumps):
        with pytest.raises(NotPermitted):
            duplicate(permit)
    with pytest.raises(AttributeError):
        permit.packet = None
    # Made without the issuer, field by field: not one the gate issued.
    shell = object.__new__(Permit)
    for name in Permit.FIELDS:
        object.__setattr__(shell, name, getattr(permit, name))
    object.__setattr__(shell, "_spent", False)
    with pytest.raises(NotPermitted):
        packets.packet_pdf(shell, packet)
    assert packets.packet_pdf(permit, packet).startswith(b"%PDF")


def test_a_permit_is_spent_once(person, clinician):
    packet = prepared(person, clinician)
    permit = permit_for(packet, "packet_pdf", clinician)
    packets.packet_pdf(permit, packet)
    with pytest.raises(NotPermitted):
        packets.packet_pdf(permit, packet)


def test_a_permit_for_another_request_or_recipient_is_refused(person, site, clinician):
    mine = prepared(person, clinician)
    other_court = make_recipient(
        site=site, category=Category.PROBATION, organisation="County Probation", office="East"
    )
    theirs = prepared(person, clinician, recipient=other_court)
    assert theirs.request.recipient_id != mine.request.recipient_id
    with pytest.raises(NotPermitted):
        packets.packet_pdf(permit_for(mine, "packet_pdf", clinician), theirs)
    with pytest.raises(NotPermitted):
        packets.packet_document(permit_for(theirs, "packet_view", clinician), mine)


def test_a_permit_for_another_path_is_refused(person, clinician):
    packet = prepared(person, clinician)
    with pytest.raises(NotPermitted):
        packets.packet_pdf(permit_for(packet, "packet_view", clinician), packet)
    with pytest.raises(NotPermitted):
        packets.build_packet(permit_for(packet, "packet_pdf", clinician))
    with pytest.raises(NotPermitted):
        packets.export_items(permit_for(packet, "packet_view", clinician), start=None, end=None)


def test_a_permit_must_match_its_disclosure_log_row(person, clinician):
    """The permit is checked against its granted log row: a permit whose bound packet was
    swapped in memory for another (as a bug could) does not match the row."""
    mine = prepared(person, clinician)
    other = prepared(person, clinician)
    permit = permit_for(mine, "packet_pdf", clinician)
    object.__setattr__(permit, "packet", other)
    object.__setattr__(permit, "request", other.request)
    object.__setattr__(permit, "consent", other.consent)
    with pytest.raises(NotPermitted):
        packets.packet_pdf(permit, other)


def test_a_refused_decision_carries_no_permit_and_builds_nothing(person, site, clinician):
    provider = make_recipient(site=site, category=Category.TREATMENT_PROVIDER)
    decision = gate.release_attempt(
        site=site,
        path="packet_generate",
        asked_by=clinician,
        person=person,
        recipient=provider,
        purpose="care",
        scope=ATT,
    )
    assert (decision.decision, decision.permit) == (gate.REFUSED, None)
    assert not ReleasePacket.objects.exists()


def test_no_code_outside_the_packets_module_reaches_its_private_builders():
    """Only releases.packets itself uses the builders behind the permit check."""
    private = re.compile(
        r"\b_(packet_content|packet_html|render_pdf|content_from_manifest|"
        r"manifest_document)\b"
    )
    root = Path(settings.BASE_DIR)
    offenders = []
    for app in ("clinic", "queues", "visits", "releases", "reports"):
        for source in (root / app).rglob("*.py"):
            if source.name == "packets.py" and source.parent.name == "releases":
                continue
            if private.search(source.read_text(encoding="utf-8")):
                offenders.append(str(source.relative_to(root)))
    assert offenders == []
