"""The one exception type the command line turns into a one-line message."""


class NerbenchError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown name.

    The message names the file, line or field at fault; the CLI prints it without a traceback.
    """
