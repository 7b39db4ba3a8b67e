"""keepalived's tokeniser: comments, quotes, braces and ``include``, into a tree of statements.

Nothing here knows a keyword except ``include``; :mod:`.parser` gives the tree its meaning.
"""

import glob
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import ConfigError

__all__ = ["Node", "lex", "split_quoted_escaped", "tree"]


@dataclass
class Node:
    """One statement: its words, raw text (for notify re-parsing), location and block."""

    tokens: list[str]
    text: str
    filename: str
    line: int
    children: list["Node"] | None = None


@dataclass
class _Item:
    kind: Literal["stmt", "{", "}"]
    filename: str
    line: int
    tokens: list[str] = field(default_factory=list)
    text: str = ""


_MAX_INCLUDE_DEPTH = 32


def _decomment(line: str, filename: str, lineno: int) -> str:
    """Strip a comment the way keepalived's decomment() does.

    '#' and '!' start a comment anywhere outside double quotes; "\\#" and "\\!"
    outside quotes stand for the character itself.
    """
    out: list[str] = []
    quote = False
    i = 0
    while i < len(line):
        c = line[i]
        if c == '"':
            quote = not quote
        elif c == "\\" and i + 1 < len(line):
            nxt = line[i + 1]
            out.append(nxt if not quote and nxt in "#!" else c + nxt)
            i += 2
            continue
        elif not quote and c in "#!":
            break
        out.append(c)
        i += 1
    if quote:
        first = line.split()[0]
        raise ConfigError(
            f"{first}: expected a closing '\"' (unterminated quote)", filename, lineno
        )
    return "".join(out).strip()


def _split_braces(text: str) -> list[str]:
    """Split a line at '{' and '}' outside double quotes, like keepalived's read_line()."""
    pieces: list[str] = []
    start = 0
    quote = False
    for i, c in enumerate(text):
        if c == '"':
            quote = not quote
        elif not quote and c in "{}":
            pieces.extend([text[start:i].strip(), c])
            start = i + 1
    pieces.append(text[start:].strip())
    return [p for p in pieces if p]


def _split_words(text: str, filename: str, lineno: int) -> list[str]:
    """keepalived's alloc_strvec(): whitespace-separated words, "quoted strings" as one."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return words
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ConfigError("unterminated '\"' quote", filename, lineno)
            words.append(text[i + 1 : end])
            i = end + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] != '"':
                j += 1
            words.append(text[i:j])
            i = j


_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "E": "\x1b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}


def split_quoted_escaped(text: str) -> list[str]:
    """keepalived's alloc_strvec_quoted_escaped(): shell-like words with '"', "'" and
    backslash escapes.  Used for notify scripts and their arguments."""
    words: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return words
        word: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                i += 1
                if i >= n:
                    raise ValueError("a backslash at the end")
                c = text[i]
                if c == "x" and i + 1 < n and text[i + 1] in "0123456789abcdefABCDEF":
                    j = i + 1
                    while j < n and text[j] in "0123456789abcdefABCDEF":
                        j += 1
                    word.append(chr(int(text[i + 1 : j], 16) & 0xFF))
                    i = j
                elif c == "c" and i + 1 < n:
                    word.append(chr(ord(text[i + 1]) & 0x1F))
                    i += 2
                elif c in "01234567":
                    j = i
                    while j < n and j < i + 3 and text[j] in "01234567":
                        j += 1
                    word.append(chr(int(text[i:j], 8) & 0xFF))
                    i = j
                else:
                    word.append(_ESCAPES.get(c, c))
                    i += 1
            elif quote:
                if c == quote:
                    quote = ""
                else:
                    word.append(c)
                i += 1
            elif c in "\"'":
                quote = c
                i += 1
            elif c.isspace():
                break
            else:
                word.append(c)
                i += 1
        if quote:
            raise ValueError(f"a missing closing {quote}")
        words.append("".join(word))


def lex(text: str, filename: str, depth: int = 0) -> Iterator[_Item]:
    """Turn a file into statements and braces, expanding ``include`` lines in place."""
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = _decomment(raw, filename, lineno)
        if not line:
            continue
        words = _split_words(line, filename, lineno)
        # keepalived recognises "include FILE" on a line of its own, at any level.
        if words and words[0] == "include":
            if len(words) != 2:
                raise ConfigError(
                    "include: expected exactly one file name or glob pattern", filename, lineno
                )
            yield from _include(words[1], filename, lineno, depth)
            continue
        for piece in _split_braces(line):
            if piece == "{":
                yield _Item("{", filename, lineno)
            elif piece == "}":
                yield _Item("}", filename, lineno)
            else:
                yield _Item("stmt", filename, lineno, _split_words(piece, filename, lineno), piece)


def _include(pattern: str, filename: str, lineno: int, depth: int) -> Iterator[_Item]:
    if depth >= _MAX_INCLUDE_DEPTH:
        raise ConfigError(
            f"include: expected at most {_MAX_INCLUDE_DEPTH} levels of nesting "
            f"(is {pattern!r} including itself?)",
            filename,
            lineno,
        )
    # Relative patterns are relative to the including file's directory: keepalived
    # chdir()s there while reading it.
    # For text without a file ("<string>") that is the current directory.
    base = "" if filename.startswith("<") else os.path.dirname(filename)
    # The directory is literal even if its name contains glob characters.
    full = os.path.join(glob.escape(base), pattern)
    matches = sorted(p for p in glob.glob(full) if not os.path.isdir(p))
    if not matches:
        raise ConfigError(
            f"include: expected {pattern!r} to match at least one file (looked for {full})",
            filename,
            lineno,
        )
    for path in matches:
        try:
            content = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ConfigError(
                f"include: cannot read {path}: {exc.strerror}", filename, lineno
            ) from None
        yield from lex(content, path, depth + 1)


def tree(items: Iterable[_Item]) -> list[Node]:
    """Attach each '{ ... }' block to the statement before it."""
    root: list[Node] = []
    current = root
    stack: list[tuple[list[Node], Node]] = []
    last: Node | None = None
    for item in items:
        if item.kind == "stmt":
            last = Node(item.tokens, item.text, item.filename, item.line)
            current.append(last)
        elif item.kind == "{":
            if last is None or last.children is not None:
                raise ConfigError(
                    "unexpected '{': expected a keyword before it", item.filename, item.line
                )
            last.children = []
            stack.append((current, last))
            current = last.children
            last = None
        else:
            if not stack:
                raise ConfigError("unexpected '}': no block is open", item.filename, item.line)
            current, _opener = stack.pop()
            last = None
    if stack:
        opener = stack[-1][1]
        raise ConfigError(
            f"{opener.tokens[0]}: block is missing its closing '}}'", opener.filename, opener.line
        )
    return root
