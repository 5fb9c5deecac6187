"""How deep a JSON text nests, measured before it is parsed: a parser recurses once per
level, so a body nesting 100,000 deep must be refused before it reaches one.

The measure runs in C-speed passes (regular expressions and ``bytes`` methods), not a
Python loop per byte: escapes, then every byte but brackets and quotes, then strings are
cut out, then each pass removes the innermost pairs
of brackets. Most texts hold fewer brackets than the limit and are not scanned at all.
"""

from __future__ import annotations

import re

__all__ = ["MAX_JSON_DEPTH", "nests_deeper_than"]

# Deeper than any body Cairn's API takes (a nested attribute value or config, a
# versioning blob), far below the 1,000 frames at which Python's parsers give up.
MAX_JSON_DEPTH = 64

_ESCAPE = re.compile(rb"\\.", re.DOTALL)  # an escaped character in a string
# Every byte but brackets and quotes: what a depth does not depend on.
_OTHER = bytes(b for b in range(256) if b not in b'[]{}"')
_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone
_INNERMOST = re.compile(rb"\[\]|\{\}")


def nests_deeper_than(data: bytes | bytearray | memoryview, limit: int) -> bool:
    """Whether the JSON text ``data`` opens more than ``limit`` arrays or objects
    inside one another. Text that is not JSON is the parser's to refuse; brackets left
    open count as levels too (a parser recurses into them before it finds the end)."""
    data = bytes(data)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    kept = _ESCAPE.sub(b"", data).translate(None, _OTHER)
    # A quote pair with no bracket between is a string without brackets, or the end
    # of one string and the start of the next: dropped either way, strings stay paired.
    brackets = _STRING.sub(b"", kept.replace(b'""', b"")).replace(b'"', b"")
    for _ in range(limit):
        brackets, removed = _INNERMOST.subn(b"", brackets)
        if not removed:
            break
    else:  # ``limit`` levels removed: any pair left is one level more
        return _INNERMOST.search(brackets) is not None or _open_run(brackets) > 0
    # What is left holds no pair: closers, then openers never closed.
    return _open_run(brackets) > limit


def _open_run(brackets: bytes) -> int:
    """Openers after the last closer: levels a parser would enter and never leave."""
    last_close = max(brackets.rfind(b"]"), brackets.rfind(b"}"))
    return len(brackets) - last_close - 1
