"""Refuse, with a clear page, any request carrying a NUL character.

NUL (U+0000) is never part of anything a person types here, and PostgreSQL can neither store it
in text nor compare text with it: a search, filter, hidden field, path segment or cookie that
carries one reaches a query and ends in a server error there (SQLite stores it silently). Form
fields already refuse it (Django's ProhibitNullCharactersValidator); this one check in front of
every view also covers what is read outside a form: searches and filters in the query string,
ids and tokens in the path, the session cookie. Nothing is read from the database and nothing
is written before the refusal.
"""

from django.http import HttpResponse
from django.template.loader import render_to_string

NUL = "\x00"


def _has_nul(mapping) -> bool:
    return any(
        NUL in key or any(NUL in value for value in values) for key, values in mapping.lists()
    )


def refused() -> HttpResponse:
    # No request context: this runs before the session and the user are known.
    return HttpResponse(render_to_string("bad_input.html"), status=400)


class RefuseNulMiddleware:
    """First in the list: before the session middleware looks the cookie up."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if (
            NUL in request.path_info
            or _has_nul(request.GET)
            or any(NUL in key or NUL in value for key, value in request.COOKIES.items())
        ):
            return refused()
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        # The body is read here, as CSRF's check reads it, not earlier: a view may still set
        # its upload handlers until then. Only form bodies; a file's bytes are its own.
        if request.method == "POST" and _has_nul(request.POST):
            return refused()
        return None
