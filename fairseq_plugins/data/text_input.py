"""Numbered text lines of a file or stream, with one-line errors naming the file and line for what a
reader of CoNLL/CoNLL-U/raw text cannot use: a UTF-8 byte order mark (it would become part of the
first token) and bytes that are not UTF-8.

``numbered_lines(path)`` or ``numbered_lines(binary stream, name)`` yields ``(line number, line
without its end-of-line)`` lazily, so a reader of stdin sees each sentence as soon as it is typed.
"""

import sys

from fairseq_plugins.errors import ConfigError

BOM = b"\xef\xbb\xbf"


def open_binary(path):
    """``path`` opened for reading bytes (``-``: stdin); a missing file is a one-line error."""
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as error:
        raise ConfigError(f"{path}: cannot be read ({error.strerror})") from None


def numbered_lines(path, stream=None):
    """``(number, text)`` of each line of ``path`` (or of ``stream``, named ``path`` in errors)."""
    own = stream is None
    stream = open_binary(path) if own else stream
    name = "<stdin>" if path == "-" else path
    try:
        for number, raw in enumerate(stream, 1):
            if number == 1 and raw.startswith(BOM):
                raise ConfigError(f"{name}:1: the file starts with a UTF-8 byte order mark; remove it "
                                  f"(e.g. sed -i '1s/^\\xEF\\xBB\\xBF//' FILE)")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise ConfigError(f"{name}:{number}: not UTF-8 (byte {raw[error.start]:#04x} at column {error.start + 1}); "
                                  "convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None
            yield number, text.rstrip("\r\n")
    finally:
        if own and stream is not sys.stdin.buffer:
            stream.close()
