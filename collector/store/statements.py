"""Split a SQL script into its statements, as psql does for the scripts of ``sql/``.

A semicolon ends a statement unless it stands in a comment (``-- ...`` to the end of the line,
``/* ... */``, which nest), a string (``'...'``, with ``''`` inside; ``E'...'`` also takes
backslash escapes), a quoted identifier (``"..."``) or a dollar-quoted text (``$$...$$``,
``$tag$...$tag$``: function bodies). Each statement is returned without its semicolon, from its
first word (the comments before it are dropped) to its last character. psql's meta-commands
(``\\ir``...) and SQL-standard bodies (``BEGIN ATOMIC ... END``) are not understood: the schema
files use neither.
"""

from __future__ import annotations

import re

from collector.errors import MigrationError

_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_\x80-\U0010ffff][A-Za-z_0-9\x80-\U0010ffff]*)?\$")
_WORD_CHAR = re.compile(r"[A-Za-z_0-9$\x80-\U0010ffff]")


def _end_of_block_comment(script: str, start: int) -> int:
    """The index after the ``*/`` that closes the comment opened at ``start`` (they nest)."""
    depth, i = 0, start
    while i < len(script):
        pair = script[i : i + 2]
        if pair == "/*":
            depth, i = depth + 1, i + 2
        elif pair == "*/":
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise _unterminated(script, start, "comment")


def _end_of_quoted(script: str, start: int, quote: str, *, backslash: bool) -> int:
    """The index after the quote that closes the string or identifier opened at ``start``."""
    i = start + 1
    while i < len(script):
        char = script[i]
        if backslash and char == "\\":
            i += 2
        elif char == quote:
            if script[i + 1 : i + 2] != quote:  # a doubled quote stands for itself
                return i + 1
            i += 2
        else:
            i += 1
    raise _unterminated(script, start, "string" if quote == "'" else "quoted identifier")


def _unterminated(script: str, start: int, what: str) -> MigrationError:
    line = script.count("\n", 0, start) + 1
    return MigrationError(f"unterminated {what} starting on line {line}")


def split_statements(script: str) -> list[str]:
    """The statements of ``script``, in order (see the module's docstring)."""
    statements: list[str] = []
    start: int | None = None  # where the current statement's first word is
    i = 0
    while i < len(script):
        char = script[i]
        after_word = i > 0 and _WORD_CHAR.match(script[i - 1]) is not None
        if script.startswith("--", i):
            newline = script.find("\n", i)
            i = len(script) if newline < 0 else newline + 1
            continue
        if script.startswith("/*", i):
            i = _end_of_block_comment(script, i)
            continue
        if char == ";":
            if start is not None:
                statements.append(script[start:i].rstrip())
            start, i = None, i + 1
            continue
        if char.isspace():
            i += 1
            continue
        if start is None:
            start = i
        if char in "'\"":
            escaped = (
                char == "'"
                and script[i - 1 : i] in ("E", "e")
                and not (i > 1 and _WORD_CHAR.match(script[i - 2]))
            )
            i = _end_of_quoted(script, i, char, backslash=escaped)
        elif char == "$" and not after_word and (tag := _DOLLAR_QUOTE.match(script, i)):
            close = script.find(tag.group(0), tag.end())
            if close < 0:
                raise _unterminated(script, i, f"dollar-quoted text {tag.group(0)}")
            i = close + len(tag.group(0))
        else:
            i += 1
    if start is not None:
        statements.append(script[start:].rstrip())
    return statements
