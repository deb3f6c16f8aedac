"""The one error type of configuration: a message about a key, at a place in a file."""

from __future__ import annotations

from collections.abc import Sequence

from nodeagent.config.secrets import redact_text

KeyPart = str | int  # a mapping key, or the index of a list item


def render_key(path: Sequence[KeyPart]) -> str:
    """("logs", "inputs", 0, "name") -> ``logs.inputs[0].name``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = f"{text}.{part}" if text else part
    return text


class ConfigError(ValueError):
    """A configuration problem, shown as ``file:line: key: message``.

    Structured: ``key_path`` (the parts of the key, list indices as ints), ``file``, ``line`` and
    ``message`` are kept apart, so an enclosing section adds its own key with :meth:`within` instead of
    taking the text apart. A ValueError, so that a value parser may raise it where a bad value is meant.
    """

    def __init__(
        self,
        message: str,
        *,
        key: str | Sequence[KeyPart] | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        message = redact_text(message)  # a URL with credentials in a value must not be echoed
        super().__init__(message)
        self.message = message
        self.key_path: tuple[KeyPart, ...] = (key,) if isinstance(key, str) else tuple(key or ())
        self.file = file
        self.line = line

    @property
    def key(self) -> str | None:
        return render_key(self.key_path) or None

    def within(self, *prefix: KeyPart, file: str | None = None, line: int | None = None) -> ConfigError:
        """This error seen from an enclosing section: its key below ``prefix``; file and line kept when
        known, else the given ones (where the enclosing section has the value)."""
        if self.file is not None or self.line is not None:
            file, line = self.file, self.line
        return ConfigError(self.message, key=(*prefix, *self.key_path), file=file, line=line)

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{_cut(self.key)}: " if self.key else ""
        return one_line(f"{where}{key}{self.message}")

    def __reduce__(self) -> tuple[object, ...]:  # keyword-only arguments: pickle (multiprocessing) needs help
        return (_rebuild, (self.message, self.key_path, self.file, self.line))


_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)} | {0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
MAX_KEY_CHARS = 200


def one_line(text: str) -> str:
    """Control characters escaped: an error is one line of the log, whatever a key or value held."""
    return text.translate(_CONTROL)


def _cut(text: str) -> str:
    return text if len(text) <= MAX_KEY_CHARS else f"{text[:MAX_KEY_CHARS]}..."


def _rebuild(message: str, key_path: tuple[KeyPart, ...], file: str | None, line: int | None) -> ConfigError:
    return ConfigError(message, key=key_path, file=file, line=line)
