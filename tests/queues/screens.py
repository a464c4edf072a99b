"""What a board screen shows, rebuilt from the frames its socket sends, the way
static/js/live.js does it: a snapshot replaces everything, a patch that starts from the version
shown replaces the sections and headings it names and puts each named table's rows in its
order (new or changed rows from the patch, the others kept), and anything else is ignored or,
for a patch from another version, asks for a sync.

The page's whitespace between elements and the wait labels (which the page ticks itself) are
left out of `Screen.html` and `shown`, so that a patched screen compares with a fresh snapshot.
"""

import re

SECTIONS = ("waiting", "in_progress", "finished")
_SECTION = re.compile(r'<section\b[^>]*\bdata-section="(\w+)".*?</section>', re.DOTALL)
_HEADING = re.compile(r"<h2\b.*?</h2>", re.DOTALL)
_BODY = re.compile(r"(<tbody>)(.*?)(</tbody>)", re.DOTALL)
_ROW = re.compile(r'<tr\b[^>]*\bdata-arrival="(\d+)".*?</tr>', re.DOTALL)
_WAIT_LABEL = re.compile(r'(<span class="wait)(?: long)?("[^>]*>)[^<]*(</span>)')


def shown(html: str) -> str:
    """The fragment as compared: no whitespace between tags, no wait labels."""
    return _WAIT_LABEL.sub(r"\1\2\3", re.sub(r">\s+<", "><", html)).strip()


class Screen:
    def __init__(self) -> None:
        self.version = -1
        self.sections: dict[str, str] = {}  # name -> frame, its table body empty
        self.rows: dict[str, list[tuple[int, str]]] = {}
        self.wants_sync = False

    @property
    def html(self) -> str:
        parts = []
        for name in SECTIONS:
            if name in self.sections:
                rows = "".join(html for _pk, html in self.rows.get(name, ()))
                frame = self.sections[name]
                body = _BODY.search(frame)
                parts.append(
                    frame[: body.end(1)] + rows + frame[body.start(3) :] if body else frame
                )
        return shown("".join(parts))

    def take(self, message: dict) -> bool:
        """Show `message` if the page would; True if it changed what is shown."""
        if not isinstance(message.get("version"), int) or message["version"] <= self.version:
            return False
        if message["type"] == "snapshot":
            self._show(message["html"])
        elif message["type"] == "patch" and message["from"] == self.version:
            self._patch(message)
        else:
            self.wants_sync = message["type"] == "patch"
            return False
        self.version = message["version"]
        return True

    def _show(self, html: str) -> None:
        self.sections, self.rows = {}, {}
        for found in _SECTION.finditer(html):
            name, frame = found[1], found[0]
            body = _BODY.search(frame)
            self.rows[name] = [(int(r[1]), r[0]) for r in _ROW.finditer(body[2])] if body else []
            self.sections[name] = _BODY.sub(r"\1\3", frame)

    def _patch(self, patch: dict) -> None:
        kept = {pk: html for rows in self.rows.values() for pk, html in rows}
        for name in SECTIONS:
            if name in patch.get("sections", {}):
                frame = patch["sections"][name]
                if frame is None:
                    self.sections.pop(name, None)
                else:
                    self.sections[name] = frame
                self.rows[name] = []
            if name in patch.get("headings", {}):
                frame = self.sections[name]
                found = _HEADING.search(frame)
                self.sections[name] = (
                    frame[: found.start()] + patch["headings"][name] + frame[found.end() :]
                )
        for name, table in patch.get("tables", {}).items():
            if not (name in self.sections and _BODY.search(self.sections[name])):
                assert table["order"] == [], f"rows for {name}, which has no table"
                continue
            fresh = {int(pk): html for pk, html in table["rows"].items()}
            self.rows[name] = [
                (pk, fresh[pk] if pk in fresh else kept[pk]) for pk in table["order"]
            ]
