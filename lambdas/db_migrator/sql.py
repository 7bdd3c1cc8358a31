"""Splitting a PostgreSQL script into single statements.

The RDS Data API runs one statement per ``ExecuteStatement`` call, so a migration file has to be cut
at its top-level semicolons, and only there: not inside string literals (``'a;b'``, ``E'\\';'``),
quoted identifiers, dollar-quoted bodies (``$$ ... ; ... $$``, ``$fn$ ... $fn$``) or comments
(``-- ;`` and nested ``/* /* ; */ */``). Pure text processing: knows nothing of AWS.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_\x80-\uffff][A-Za-z0-9_\x80-\uffff]*)?\$")
_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")


class SqlSyntaxError(ValueError):
    """The script ends inside a literal, identifier or comment (its statements cannot be cut)."""


@dataclass
class _Scanner:
    text: str
    position: int = 0

    def at(self, prefix: str) -> bool:
        return self.text.startswith(prefix, self.position)

    def skip_line_comment(self) -> None:
        end = self.text.find("\n", self.position)
        self.position = len(self.text) if end < 0 else end + 1

    def skip_block_comment(self) -> None:
        # PostgreSQL block comments nest.
        start, depth = self.position, 0
        while self.position < len(self.text):
            if self.at("/*"):
                depth += 1
                self.position += 2
            elif self.at("*/"):
                depth -= 1
                self.position += 2
                if depth == 0:
                    return
            else:
                self.position += 1
        raise SqlSyntaxError(f"unterminated block comment starting at offset {start}")

    def skip_quoted(self, quote: str, *, backslash_escapes: bool) -> None:
        """Past a '...' literal or "..." identifier; a doubled quote is an escaped quote."""
        start = self.position
        self.position += 1
        while self.position < len(self.text):
            char = self.text[self.position]
            if backslash_escapes and char == "\\":
                self.position += 2
                continue
            self.position += 1
            if char == quote:
                if self.at(quote):
                    self.position += 1
                    continue
                return
        kind = "quoted identifier" if quote == '"' else "string literal"
        raise SqlSyntaxError(f"unterminated {kind} starting at offset {start}")

    def skip_dollar_quoted(self, tag: str) -> None:
        start = self.position
        end = self.text.find(tag, self.position + len(tag))
        if end < 0:
            raise SqlSyntaxError(f"unterminated dollar-quoted string {tag} starting at offset {start}")
        self.position = end + len(tag)

    def starts_escape_string(self) -> bool:
        """``E'...'``: the E must be a word of its own, not the end of an identifier (``name'``)."""
        if self.position == 0 or self.text[self.position - 1] not in "eE":
            return False
        before = self.text[self.position - 2] if self.position >= 2 else ""
        return not _IDENTIFIER_CHAR.fullmatch(before or " ")


def split_statements(script: str) -> list[str]:
    """The statements of ``script`` in order, without their terminating semicolons.

    Fragments holding only comments and whitespace are dropped; comments inside a statement are
    kept (PostgreSQL ignores them), so error messages point at the text as written.
    """
    scanner = _Scanner(script)
    statements: list[str] = []
    start, has_code = 0, False
    while scanner.position < len(script):
        char = script[scanner.position]
        if scanner.at("--"):
            scanner.skip_line_comment()
        elif scanner.at("/*"):
            scanner.skip_block_comment()
        elif char == "'":
            scanner.skip_quoted("'", backslash_escapes=scanner.starts_escape_string())
            has_code = True
        elif char == '"':
            scanner.skip_quoted('"', backslash_escapes=False)
            has_code = True
        elif char == "$" and (tag := _dollar_tag(script, scanner.position)) is not None:
            scanner.skip_dollar_quoted(tag)
            has_code = True
        elif char == ";":
            if has_code:
                statements.append(script[start : scanner.position].strip())
            scanner.position += 1
            start, has_code = scanner.position, False
        else:
            has_code = has_code or not char.isspace()
            scanner.position += 1
    if has_code:
        statements.append(script[start:].strip())
    return statements


def _dollar_tag(script: str, position: int) -> str | None:
    """The ``$tag$`` opening at ``position``, unless the ``$`` belongs to an identifier or ``$1``."""
    if position > 0 and _IDENTIFIER_CHAR.fullmatch(script[position - 1]):
        return None
    match = _DOLLAR_TAG.match(script, position)
    return match.group(0) if match else None
