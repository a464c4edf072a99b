"""Moving the clock in tests. Production code cannot be told another time (the gate and the
release services always use now); tests that need "one minute after expiry" move now itself."""

from contextlib import contextmanager
from datetime import datetime
from unittest import mock


@contextmanager
def clock_at(moment: datetime):
    """Make django.utils.timezone.now() return `moment` inside the block."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield
