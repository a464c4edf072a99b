"""What a packet contains: exactly the granted scope, item by item, with the §2.32 notice and the
consent's scope; a manifest and a sha256 that match what is stored."""

import datetime as dt
import hashlib
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from releases.errors import ReleaseError
from releases.models import Category, ReleasePacket, Scope
from releases.packets import REDISCLOSURE_NOTICE, packet_sha256
from releases.services import outgoing as services
from tests.releases.factories import approve_twice, make_consent, make_recipient
from tests.releases.outgoing_data import TOX_WORDS, drug_court, make_record, pdf_text

pytestmark = pytest.mark.django_db

ALL = [s.value for s in Scope]


@pytest.fixture
def record(site):
    return make_record(site=site)


def prepared(record, clinician, *, scope, consent_scope=None, purpose="attendance", **period):
    court = drug_court(record.person.site)
    make_consent(
        person=record.person,
        recipients=[court],
        purposes=[purpose],
        scope=consent_scope or scope,
        scope_other="housing letter",
    )
    request = services.release_request_create(
        site=record.person.site,
        person=record.person,
        recipient=court,
        purpose=purpose,
        scope=scope,
        by=clinician,
        **period,
    )
    approve_twice(request, site=record.person.site)
    return services.packet_generate(request=request, by=clinician)


def everything_sent(packet) -> str:
    _packet, data = services.packet_open(packet=packet, by=packet.generated_by, path="packet_pdf")
    pdf = pdf_text(data)
    return "\n".join([packet.html, json.dumps(packet.manifest), pdf])


def test_attendance_consent_without_tox_leaves_tox_out_of_html_manifest_and_pdf(record, clinician):
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE])
    sent = everything_sent(packet)
    for word in TOX_WORDS:
        assert word.lower() not in sent.lower(), word
    # Nothing else outside the scope either: no medication, notes, goals or their words.
    for word in [
        "Buprenorphine",
        "16 mg",
        "housing on day",
        "Get my ID back",
        "Birth certificate",
        "Keep my dog",
        "Smoked",
    ]:
        assert word not in sent, word
    # Absent, not blanked: there is no section for it at all.
    assert 'data-scope="tox"' not in packet.html
    assert {i["type"] for i in packet.manifest["items"]} == {"attendance"}
    for visit in record.visits:
        day = timezone.localdate(visit.started_at, visit.site.tz).isoformat()
        assert day in packet.html
        assert day in sent.split("\n", 1)[1]  # manifest and PDF too


def test_asking_for_tox_under_an_attendance_only_consent_is_refused(record, clinician):
    with pytest.raises(ReleaseError) as info:
        prepared(
            record, clinician, scope=[Scope.ATTENDANCE, Scope.TOX], consent_scope=[Scope.ATTENDANCE]
        )
    assert info.value.code == "scope_not_consented"
    assert not ReleasePacket.objects.exists()


def test_a_consent_wider_than_the_request_releases_only_what_was_asked(record, clinician):
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE], consent_scope=ALL)
    assert [i["type"] for i in packet.manifest["items"]] == ["attendance"] * 3
    assert "Fentanyl" not in everything_sent(packet)


def test_every_category_item_by_item(record, clinician):
    packet = prepared(record, clinician, scope=ALL)
    sent = everything_sent(packet)
    types = [i["type"] for i in packet.manifest["items"]]
    assert types.count("attendance") == 3
    assert types.count("visit_note") == 3
    assert "medication" in types and "tox" in types and "goal" in types
    assert "goal_progress" in types
    assert "Buprenorphine/naloxone (sublingual), 16 mg daily, 7 days' supply" in sent
    assert "Fentanyl: Positive" in packet.html
    # Tox results only: the conversation around the screen is not a result.
    assert "Smoked some last week" not in sent
    assert "No diagnoses are recorded in this system." in sent
    assert "housing letter" in packet.html
    # Priorities are not visit notes.
    assert "Keep my dog" not in sent


def test_period_limits_every_item(record, clinician):
    today = timezone.localdate(timezone.now(), record.person.site.tz)
    start = today - dt.timedelta(days=12)
    packet = prepared(record, clinician, scope=ALL, period_start=start, period_end=today)
    dates = [i["date"] for i in packet.manifest["items"] if i["date"]]
    assert dates and all(start.isoformat() <= d <= today.isoformat() for d in dates)
    oldest = timezone.localdate(record.visits[0].started_at, record.person.site.tz).isoformat()
    assert oldest not in packet.html.split("Prepared", 1)[1].split("What the consent", 1)[1]


def test_manifest_and_sha256_match_the_stored_packet(record, clinician):
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE, Scope.MEDICATIONS])
    packet.refresh_from_db()
    assert packet.sha256 == hashlib.sha256(packet.html.encode("utf-8")).hexdigest()
    assert packet.sha256 == packet_sha256(packet.html)
    expected = [
        {
            "type": "attendance",
            "id": v.pk,
            "date": timezone.localdate(v.started_at, v.site.tz).isoformat(),
        }
        for v in record.visits
    ] + [
        {
            "type": "medication",
            "id": record.medication.pk,
            "date": timezone.localdate(
                record.medication.recorded_at, record.person.site.tz
            ).isoformat(),
        }
    ]
    assert packet.manifest["items"] == expected


def test_every_packet_carries_the_notice_and_the_consents_scope(record, clinician):
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE])
    sent = everything_sent(packet)
    assert REDISCLOSURE_NOTICE.replace("\n", "<br>") in packet.html
    assert "protected by Federal confidentiality rules (42 CFR part 2)" in sent.split("\n")[-1]
    assert "It allows Riverside to disclose: Attendance and visit dates." in packet.html
    assert "To: County Drug Court, Coordinator B. Ruiz." in packet.html
    assert "For: attendance." in packet.html


def test_names_are_escaped_in_the_stored_html(site, clinician):
    record = make_record(site=site, name="<script>alert(1)</script>")
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE])
    assert "<script>" not in packet.html


def test_pdf_page_is_the_same_items(client, record, clinician):
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE])
    client.force_login(clinician)
    response = client.get(reverse("releases:packet_pdf", args=[packet.pk]))
    assert (
        response["Content-Disposition"] == f'attachment; filename="release-packet-{packet.pk}.pdf"'
    )
    text = pdf_text(response.content)
    for item in packet.manifest["items"]:
        assert item["date"] in text


def test_treatment_provider_packet_has_no_approval_step(record, clinician):
    provider = make_recipient(site=record.person.site, category=Category.TREATMENT_PROVIDER)
    make_consent(person=record.person, recipients=[provider], purposes=["care"], scope=ALL)
    request = services.release_request_create(
        site=record.person.site,
        person=record.person,
        recipient=provider,
        purpose="care",
        scope=[Scope.MEDICATIONS],
        by=clinician,
    )
    packet = services.packet_generate(request=request, by=clinician)
    assert [i["type"] for i in packet.manifest["items"]] == ["medication"]


# --- the §2.32 notice, word for word -------------------------------------------------------------

# 42 CFR §2.32(a)(1) "Statement 1" as revised in 2024 (89 FR 12472), from the eCFR, typed out
# here independently of releases.packets so a drift in either is caught. Paragraphs (i)-(iii)
# are the regulation's own.
ECFR_2_32_A_1 = [
    "This record which has been disclosed to you is protected by Federal confidentiality rules "
    "(42 CFR part 2). These rules prohibit you from using or disclosing this record, or "
    "testimony that describes the information contained in this record, in any civil, "
    "criminal, administrative, or legislative proceedings by any Federal, State, or local "
    "authority, against the patient, unless authorized by the consent of the patient, except "
    "as provided at 42 CFR 2.12(c)(5) or as authorized by a court in accordance with 42 CFR "
    "2.64 or 2.65. In addition, the Federal rules prohibit you from making any other use or "
    "disclosure of this record unless at least one of the following applies:",
    "(i) Further use or disclosure is expressly permitted by the written consent of the "
    "individual whose information is being disclosed in this record or as otherwise permitted "
    "by 42 CFR part 2.",
    "(ii) You are a covered entity or business associate and have received the record for "
    "treatment, payment, or health care operations, or",
    "(iii) You have received the record from a covered entity or business associate as "
    "permitted by 45 CFR part 164, subparts A and E.",
    "A general authorization for the release of medical or other information is NOT "
    "sufficient to meet the required elements of written consent to further use or "
    "redisclose the record (see 42 CFR 2.31).",
]


def test_the_redisclosure_notice_is_the_ecfr_statement_word_for_word():
    assert REDISCLOSURE_NOTICE.split("\n") == ECFR_2_32_A_1


def test_every_packet_carries_the_whole_notice_in_html_and_pdf(record, clinician):
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE])
    for paragraph in ECFR_2_32_A_1:
        assert paragraph in packet.html
    _packet, data = services.packet_open(packet=packet, by=clinician, path="packet_pdf")
    pdf = pdf_text(data)
    assert " ".join(" ".join(ECFR_2_32_A_1).split()) in pdf


# --- names in any alphabet (the PDF font) --------------------------------------------------------


@pytest.mark.parametrize("name", ["Zoë Nguyễn", "Łukasz Żółć", "Ольга Ş. Çelik", "Σοφία"])
def test_pdf_draws_names_beyond_latin_1_as_written(site, clinician, name):
    record = make_record(site=site, name=name)
    packet = prepared(record, clinician, scope=[Scope.ATTENDANCE])
    _packet, data = services.packet_open(packet=packet, by=clinician, path="packet_pdf")
    assert data.startswith(b"%PDF")
    assert b"DejaVuSans" in data  # the bundled Unicode font is embedded
    text = pdf_text(data)
    assert f"About: {name}" in text
    assert "?" not in text.split("About: ", 1)[1][: len(name)]
