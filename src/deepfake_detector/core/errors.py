"""The one base class of errors meant for people: the message says what is wrong and what to do."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, settings or state a user can fix; front ends print the message, no traceback."""
