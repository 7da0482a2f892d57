"""Output that works on any terminal: narrow or wide, colour or not, UTF-8 or ASCII, open or closed pipe.

Owns the console tito prints through, the ASCII spelling of its symbols and the closed-pipe exit.

Rich already honours NO_COLOR, TERM=dumb and the COLUMNS variable; what it does not do is spell its
text for an ASCII-only stream (`PYTHONIOENCODING=ascii`, `LANG=C` on an old system): the icons tito
uses would end in UnicodeEncodeError. `Console` here writes through `Transliterating`, which swaps each
icon for an ASCII word and any other unencodable character for `?`.
"""
from __future__ import annotations

import io
import os
import sys

# Each symbol tito prints, spelled in ASCII in the same number of terminal cells (an emoji takes two),
# so tables laid out by Rich stay aligned after the swap. The state word always follows the icon.
ASCII = {
    "✅": "ok", "❌": "XX", "🔄": "~~", "🚀": "->", "🔒": "--", "⏳": "..", "🎯": "* ", "📍": "> ",
    "👉": "=>", "🎉": "!!", "🔓": "++", "🏆": "**", "⏭": ">", "✓": "+", "✗": "x", "↻": "~", "•": "-",
    "·": "-", "→": ">", "—": "-", "–": "-", "…": "~", "█": "#", "▓": ".", "░": ":", "▒": "+", "─": "-",
    "▁": "_", "▂": "_", "▃": "-", "▄": "-", "▅": "=", "▆": "=", "▇": "#", "️": "",
}  # fmt: skip


def encodable(text: str, encoding: str | None) -> bool:
    try:
        text.encode(encoding or "utf-8")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def transliterate(text: str, encoding: str) -> str:
    for symbol, ascii_word in ASCII.items():
        text = text.replace(symbol, ascii_word)
    return text.encode(encoding, "replace").decode(encoding)


class Transliterating(io.TextIOBase):
    """A text stream in front of `stream` that writes only what its encoding can carry."""

    def __init__(self, stream):
        self.stream = stream

    @property
    def encoding(self) -> str:
        return self.stream.encoding or "ascii"

    def write(self, text: str) -> int:
        self.stream.write(text if encodable(text, self.encoding) else transliterate(text, self.encoding))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


def safe_stream(stream=None):
    """`stream` (default stdout) itself when it speaks UTF-8, else the transliterating wrapper."""
    stream = stream or sys.stdout
    return stream if encodable("✅█", getattr(stream, "encoding", None)) else Transliterating(stream)


def console(stream=None):
    """A Rich console on `stream`. In a pipe Rich assumes 80 columns unless COLUMNS says otherwise."""
    from rich.console import Console  # here, not at the top: `tito checkpoint status --json` needs no Rich

    class PipeAwareConsole(Console):
        def on_broken_pipe(self) -> None:
            # Rich would exit 1; tito.cli ends every closed pipe the same way, quietly with 141
            raise BrokenPipeError

    return PipeAwareConsole(file=safe_stream(stream), highlight=False, emoji=False, soft_wrap=False)


def silence_closed_pipe() -> None:
    """After a BrokenPipeError (`tito ... | head -1`): point stdout at /dev/null so the interpreter's
    final flush cannot raise again (the recipe in Python's signal documentation)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (a test's capture): nothing left to flush into a pipe
    finally:
        os.close(devnull)
