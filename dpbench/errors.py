"""The one exception type for problems a user can fix (bad input, missing data, wrong names)."""


class DpbenchError(Exception):
    """A user-facing error. The CLI prints its message in one line and exits with status 2."""
