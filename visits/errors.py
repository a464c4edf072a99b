class VisitError(Exception):
    """A visit action that cannot happen. `code` is for programs, `message` for people."""

    def __init__(self, code: str, message: str, *, visit=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.visit = visit
