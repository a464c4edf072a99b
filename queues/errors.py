class QueueError(Exception):
    """A queue action that cannot happen. `code` is for programs, `message` for people."""

    def __init__(self, code: str, message: str, *, arrival=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.arrival = arrival
