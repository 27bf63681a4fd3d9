"""The exceptions arrowfeed raises: one base, and subclasses that are also the built-in
exception a Python programmer would catch (``OSError``, ``IndexError``, ``ValueError``).

Every message is one line that starts with the file, shard or URL concerned.
"""


class ArrowfeedError(Exception):
    """Base class of every error arrowfeed raises: malformed data, a failed read, a bad
    argument. The message names the file, shard or URL and what is wrong."""


class IOError(ArrowfeedError, OSError):  # noqa: A001 - the name says what it is
    """A file or object could not be read or written (missing, refused, unreachable)."""


class IndexError(ArrowfeedError, IndexError):  # noqa: A001
    """A row index past the end of a dataset."""


class ValueError(ArrowfeedError, ValueError):  # noqa: A001
    """An argument or setting that cannot work."""


class CancelledError(ArrowfeedError):
    """The operation was stopped (its consumer went away)."""
