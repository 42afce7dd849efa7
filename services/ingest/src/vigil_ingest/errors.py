"""The one error family the ingest core raises for bad input.

Every parser in :mod:`vigil_ingest` turns any problem with the bytes it was given into an
:class:`InvalidInput` (or a subclass) whose message says what was wrong, so the HTTP layer can map
it to a 4xx answer and the poller can record it as the feed's last error. Anything else escaping a
parser is a bug.
"""

from __future__ import annotations


class InvalidInput(ValueError):
    """Input that cannot be turned into an alert; ``str(exc)`` is a readable reason."""

    status_code: int = 422


class HostileXMLError(InvalidInput):
    """XML with a DTD, entity declarations or external references: refused unparsed."""


class MalformedInput(InvalidInput):
    """Input that does not even parse as the format it claims to be (malformed JSON)."""

    status_code = 400


class EmptyInput(InvalidInput):
    """Input with no usable text."""


class UnsupportedContent(InvalidInput):
    """Input whose format could not be recognised (wrong content type)."""

    status_code = 415


class InputTooLarge(InvalidInput):
    """Input over the configured size limit."""

    status_code = 413
