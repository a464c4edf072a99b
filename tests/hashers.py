"""The password hasher of the test suite."""

from django.contrib.auth.hashers import PBKDF2PasswordHasher


class FewIterationsPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    """Django's PBKDF2, as the product uses, with few iterations: each password a test sets or
    checks then costs well under a millisecond instead of about a third of a second. The hash
    names the same algorithm and carries its iteration count, so a server process a test
    starts on the project's own settings still checks these passwords."""

    iterations = 1_000
