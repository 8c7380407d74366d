"""The one exception type that the CLI turns into a clear one-line message."""


class UserError(Exception):
    """A problem the user can fix (bad path, bad option, wrong file).

    The CLI prints ``landgan: error: <message>`` and exits with status 2;
    library callers can catch it like any other exception.
    """
