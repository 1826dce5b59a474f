"""The one exception type the command line turns into a one-line message."""


class NerbenchError(Exception):
    """A problem the user can fix: bad input, a missing file, an unknown name.

    The message names the file, line or field at fault; the CLI prints it without a traceback.
    """


def utf8_text(data: bytes, where: str) -> str:
    """`data` as text, or a NerbenchError naming `where`, the line and the byte that is not UTF-8."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise NerbenchError(f"{where}:{line}: not valid UTF-8 (byte 0x{data[err.start]:02x})") from None
