"""Logging without query strings (README: "What the logs keep").

A query string is where a name, a birth date or anything else typed into a GET form would
travel, so no log line keeps one: every request line, access-log entry and warning that
carries a URL keeps its path (which holds record ids at most) and drops everything from the
"?" on.

The project's pages never put such details in a URL; this catches what the project does not
control: an old bookmark, a link pasted from elsewhere, a Referer in a CSRF warning.

Servers configure their own loggers, some of them before the project's settings are read
(uvicorn does, then imports the application, which runs `django.setup()`), some after (a
launcher that imports the application itself). So `configure()`, Django's LOGGING_CONFIG,
attaches the filter to the loggers that write URLs, without touching their handlers or
format: a logger's filters outlive any later `dictConfig` or `fileConfig`, which replace a
logger's handlers but never its filters. It also filters every handler configured at that
point, which covers Django's own console handler and the project's.
"""

import logging
import logging.config
import re
from collections.abc import Mapping

# The loggers that write request URLs, by the server that writes them.
URL_LOGGERS = (
    "uvicorn.access",  # every HTTP request
    "uvicorn.error",  # websocket handshakes ("WebSocket /ws/…" [accepted])
    "django.channels.server",  # `runserver` with daphne installed
    "django.server",  # `runserver` without daphne
    "django.request",  # 4xx and 5xx
    "django.security.csrf",  # its reason may quote the Referer
)

# A "?" right after a URL's path (or host), and everything after it up to a space or quote.
_QUERY = re.compile(r"(?<=[\w/%.~:+-])\?[^\s\"'<>]+")


def without_query(text: str) -> str:
    return _QUERY.sub("", text)


def _clean(value):
    return without_query(value) if isinstance(value, str) else value


class DropQueryStrings(logging.Filter):
    """Rewrites a record so no argument (nor a message logged without arguments) keeps a query
    string. It never drops a record: the request is still logged, by path."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping):
            record.args = {key: _clean(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple) and record.args:
            record.args = tuple(_clean(value) for value in record.args)
        elif not record.args:
            record.msg = _clean(record.msg)
        return True


def install(logger: logging.Filterer) -> None:
    """Attach the filter once (configuring again must not stack copies)."""
    if not any(isinstance(f, DropQueryStrings) for f in logger.filters):
        logger.addFilter(DropQueryStrings())


def configure(config: dict) -> None:
    """LOGGING_CONFIG: the project's LOGGING, then the filter where URLs are written."""
    logging.config.dictConfig(config)
    for name in URL_LOGGERS:
        install(logging.getLogger(name))
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # placeholders have none
            install(handler)
