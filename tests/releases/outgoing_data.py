"""A person with a little of everything on record, for the outgoing-release tests."""

import datetime as dt
import re
import zlib
from dataclasses import dataclass

from django.utils import timezone

from releases.models import Category
from tests.factories import UserFactory
from tests.releases.factories import make_person, make_recipient
from visits.models import (
    Goal,
    GoalProgress,
    Medication,
    MedicationEvent,
    Substance,
    ToxResult,
    ToxScreen,
    Visit,
)

TOX_WORDS = ["Fentanyl", "Xylazine", "Cocaine", "Positive", "Negative", "Oral fluid", "Urine"]


@dataclass
class Record:
    person: object
    visits: list
    medication: object
    screen: object
    goal: object
    progress: object


def make_record(*, site, name="Jordan", days_ago=(30, 10, 2)) -> Record:
    staff = UserFactory()
    person = make_person(site=site, name=name)
    now = timezone.now()
    visits = []
    for n in days_ago:
        visits.append(
            Visit.objects.create(
                site=site,
                person=person,
                origin=Visit.Origin.QUICK,
                started_at=now - dt.timedelta(days=n),
                ended_at=now - dt.timedelta(days=n) + dt.timedelta(minutes=20),
                opened_by=staff,
                note=f"Talked about housing on day {n}; wound healing.",
                priorities="Keep my dog with me",
            )
        )
    last = visits[-1]
    medication = MedicationEvent.objects.create(
        visit=last,
        medication=Medication.BUPRENORPHINE_NALOXONE,
        dose="16 mg daily",
        days_supply=7,
        action=MedicationEvent.Action.PRESCRIBED,
        recorded_by=staff,
        recorded_at=last.started_at,
    )
    screen = ToxScreen.objects.create(
        visit=last,
        specimen=ToxScreen.Specimen.ORAL_FLUID,
        collected_on=timezone.localdate(last.started_at, site.tz),
        own_account="Smoked some last week",
        recorded_by=staff,
        recorded_at=last.started_at,
    )
    ToxResult.objects.create(screen=screen, substance=Substance.FENTANYL, result="positive")
    ToxResult.objects.create(screen=screen, substance=Substance.XYLAZINE, result="negative")
    goal = Goal.objects.create(
        person=person,
        words="Get my ID back",
        set_on=timezone.localdate(visits[0].started_at, site.tz),
        status_changed_at=now,
        created_by=staff,
    )
    progress = GoalProgress.objects.create(
        goal=goal,
        on=timezone.localdate(last.started_at, site.tz),
        note="Birth certificate ordered",
        author=staff,
        written_at=now,
    )
    return Record(person, visits, medication, screen, goal, progress)


def drug_court(site, **kw):
    return make_recipient(
        site=site,
        category=Category.DRUG_COURT,
        organisation="County Drug Court",
        person_name="Coordinator B. Ruiz",
        **kw,
    )


def _literal(data: bytes, pos: int) -> tuple[bytes, int]:
    """A PDF literal string starting after its "(": its bytes and the position after ")"."""
    out, depth = bytearray(), 1
    escapes = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
    while True:
        ch = data[pos]
        if ch == 0x5C:  # backslash
            nxt = data[pos + 1]
            if nxt in escapes:
                out.append(escapes[nxt])
                pos += 2
            elif 0x30 <= nxt <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[pos + 1 : pos + 4]).group()
                out.append(int(digits, 8) & 0xFF)
                pos += 1 + len(digits)
            elif nxt in (0x0A, 0x0D):
                pos += 2
            else:
                out.append(nxt)
                pos += 2
            continue
        if ch == 0x28:
            depth += 1
        elif ch == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out), pos + 1
        out.append(ch)
        pos += 1


def _objects(data: bytes) -> dict[int, tuple[bytes, bytes]]:
    """Object number -> (dictionary text, decompressed stream or b"").

    A stream is cut by its /Length, never by searching for "endstream" or "endobj": compressed
    bytes (an embedded font, say) may contain those words by chance."""
    objects = {}
    pos = 0
    header = re.compile(rb"(\d+) 0 obj")
    while (match := header.search(data, pos)) is not None:
        number, start = int(match.group(1)), match.end()
        stream_at = re.compile(rb"stream\r?\n").search(data, start)
        end_at = data.find(b"endobj", start)
        if stream_at is not None and stream_at.start() < end_at:
            head = data[start : stream_at.start()]
            length = int(re.search(rb"/Length (\d+)", head).group(1))
            stream = data[stream_at.end() : stream_at.end() + length]
            if b"FlateDecode" in head:
                stream = zlib.decompress(stream)
            pos = data.find(b"endobj", stream_at.end() + length) + len(b"endobj")
        else:
            head, stream = data[start:end_at], b""
            pos = end_at + len(b"endobj")
        objects[number] = (head, stream)
    return objects


def _unicode_maps(objects) -> dict[bytes, dict[int, str]]:
    """Font resource name (b"F1") -> {glyph code: text}, from each font's ToUnicode CMap;
    None for a core font (one byte per character, Latin-1)."""
    maps = {}
    for head, _stream in objects.values():
        for name, ref in re.findall(rb"/(F\d+) (\d+) 0 R", head):
            font_head = objects[int(ref)][0]
            to_unicode = re.search(rb"/ToUnicode (\d+) 0 R", font_head)
            if to_unicode is None:
                maps[name] = None
                continue
            cmap = objects[int(to_unicode.group(1))][1]
            table = {}
            for code, text in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", cmap):
                if len(code) == 4 and b"codespacerange" not in code:
                    table[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
            maps[name] = table
    return maps


def pdf_text(data: bytes) -> str:
    """All text drawn in an fpdf2 PDF, whitespace-normalised: embedded Unicode (TrueType)
    fonts are decoded through their ToUnicode maps, core fonts as Latin-1."""
    objects = _objects(data)
    maps = _unicode_maps(objects)
    words = []
    for head, stream in objects.values():
        if b"BT" not in stream or b"/Type" in head:
            continue
        font, pos = None, 0
        while pos < len(stream):
            ch = stream[pos : pos + 1]
            if ch == b"/":
                tf = re.match(rb"/(F\d+) [\d.]+ Tf", stream[pos:])
                if tf:
                    font = maps.get(tf.group(1))
                    pos += tf.end()
                    continue
            if ch == b"(":
                raw, pos = _literal(stream, pos + 1)
                if font is None:
                    words.append(raw.decode("latin-1"))
                else:
                    codes = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
                    words.append("".join(font.get(c, "\ufffd") for c in codes))
                continue
            if ch == b"-" and re.match(rb"-\d{3,}", stream[pos:]):
                words.append(" ")  # a justified line's word gap
            if ch in (b"T",) and stream[pos : pos + 2] in (b"Tj", b"TJ"):
                words.append(" ")
            pos += 1
    return " ".join("".join(words).split())
