"""A reader of protobuf's text format, as caffe's ``.prototxt`` files are written.

No schema: every message becomes a :class:`Message`, a dict from field name to the list of its
values (a field may repeat), values being numbers, booleans, strings, enum names (as strings)
or nested messages. That is all the Caffe importer needs, and it reads fields it does not know
(``param { lr_mult }``, fillers) without a definition for each.
"""
from __future__ import annotations

import re
from typing import Dict, Iterator, List, Tuple, Union

__all__ = ["Message", "PrototxtError", "parse"]

Value = Union[int, float, bool, str, "Message"]


class PrototxtError(ValueError):
    """Text that is not protobuf text format; the message names the line."""


class Message(Dict[str, List[Value]]):
    def one(self, name: str, default=None):
        """The field's last value (a repeated scalar read as one), or ``default``."""
        values = self.get(name)
        return values[-1] if values else default

    def all(self, name: str) -> List[Value]:
        return list(self.get(name, []))


_TOKEN = re.compile(r"""\s+|\#[^\n]*|(?P<tok>[{}\[\]:,;<>]|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s{}\[\]:,;<>"'\#]+)""")


def _tokens(text: str) -> Iterator[Tuple[str, int]]:
    pos, line = 0, 1
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PrototxtError("line %d: cannot read %r" % (line, text[pos:pos + 20]))
        if m.group("tok") is not None:
            yield m.group("tok"), line
        line += text.count("\n", pos, m.end())
        pos = m.end()


def _scalar(tok: str, line: int) -> Value:
    if tok[0] in "\"'":
        return bytes(tok[1:-1], "utf-8").decode("unicode_escape")
    low = tok.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return int(tok, 0) if re.fullmatch(r"[-+]?(0x[0-9a-fA-F]+|\d+)", tok) else float(tok)
    except ValueError:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", tok):
            raise PrototxtError("line %d: %r is not a value" % (line, tok)) from None
        return tok  # an enum name


def parse(text: str) -> Message:
    tokens = list(_tokens(text))
    pos = 0

    def message(close: str) -> Message:
        nonlocal pos
        msg = Message()
        while pos < len(tokens):
            tok, line = tokens[pos]
            if tok == close:
                pos += 1
                return msg
            if tok in "{}[]:,;<>":
                raise PrototxtError("line %d: expected a field name, got %r" % (line, tok))
            name = tok
            pos += 1
            if pos < len(tokens) and tokens[pos][0] == ":":
                pos += 1
            if pos >= len(tokens):
                raise PrototxtError("line %d: field %r has no value" % (line, name))
            tok, line = tokens[pos]
            if tok in ("{", "<"):
                pos += 1
                msg.setdefault(name, []).append(message("}" if tok == "{" else ">"))
            elif tok == "[":
                pos += 1
                while pos < len(tokens) and tokens[pos][0] != "]":
                    if tokens[pos][0] != ",":
                        msg.setdefault(name, []).append(_scalar(*tokens[pos]))
                    pos += 1
                pos += 1
            else:
                msg.setdefault(name, []).append(_scalar(tok, line))
                pos += 1
            if pos < len(tokens) and tokens[pos][0] in ",;":
                pos += 1
        if close != "":
            raise PrototxtError("unexpected end of text: a %r is missing" % close)
        return msg

    return message("")
