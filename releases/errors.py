class ReleaseError(Exception):
    """A consent, recipient or release action that cannot happen.

    `code` is for programs (tests, forms mapping errors to fields), `message` for people.
    """

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message
