"""Checking JSON from a file a user opened, one field at a time.

Every problem is a FieldError whose message names the field and says what
was expected and what was found ("progress.base_lr: expected a number > 0,
got null"), never a KeyError or a TypeError from deep inside the code that
would have used the value. ``parse`` turns the two ways ``json.loads`` fails
outside ValueError (RecursionError on deep nesting) into the same error, and
keeps an integer too long for Python to convert as a ``HugeInt`` so the check
of its field can name it instead of refusing the whole text.
"""

from __future__ import annotations

import json
import math
import re
import sys


class FieldError(ValueError):
    """A field of a JSON document that is missing, of the wrong type or out of range.
    Any number of over 50 digits in the message is shortened (a file may hold
    a 4,000-digit one), so the message stays one readable line."""

    def __init__(self, message: str):
        super().__init__(shorten_numbers(message))


def shorten_numbers(text: str) -> str:
    """"123456...(4,001 digits)" for each number of more than 50 digits in ``text``."""
    def short(m):
        digits = m.group().replace(",", "")
        return f"{digits[:6]}...({len(digits):,} digits)"
    return re.sub(r"\d(?:,?\d){50,}", short, text)     # also "10,000,000,..." as formatted


class HugeInt:
    """An integer literal longer than Python converts (4,300 digits by default)."""

    def __init__(self, digits: int):
        self.digits = digits


def parse(text: str, what: str):
    """``json.loads(text)``; FieldError naming ``what`` if it is not JSON."""
    limit = sys.get_int_max_str_digits()

    def parse_int(s: str):
        digits = len(s.lstrip("-"))
        return HugeInt(digits) if limit and digits > limit else int(s)

    try:
        return json.loads(text, parse_int=parse_int)
    except RecursionError:
        raise FieldError(f"{what}: JSON nested too deeply to read") from None
    except ValueError as e:     # JSONDecodeError is one
        raise FieldError(f"{what}: not valid JSON ({e})") from None


def describe(value) -> str:
    """A short, one-line account of a JSON value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, HugeInt):
        return f"a {value.digits:,}-digit integer"
    if isinstance(value, int):
        if abs(value) < 10 ** 50:
            return repr(value)
        return f"an integer of about {int(value.bit_length() * math.log10(2)) + 1:,} digits"
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else repr(value)
    if isinstance(value, str):
        shown = json.dumps(value[:40] + ("..." if len(value) > 40 else ""))
        return f"the string {shown}"
    if isinstance(value, list):
        n = len(value)
        return "an empty list" if n == 0 else f"a list of {n} item{'s' if n != 1 else ''}"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _bad(field: str, expected: str, value):
    raise FieldError(f"{field}: expected {expected}, got {describe(value)}")


def obj(value, field: str, allowed=None, required=()) -> dict:
    """A JSON object; with ``allowed``, no other keys; every ``required`` key present."""
    if not isinstance(value, dict):
        _bad(field, "an object", value)
    for key in required:
        if key not in value:
            raise FieldError(f"{field}.{key}: missing")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise FieldError(f"{field}: unknown field {json.dumps(key[:40])} "
                                 f"(known: {', '.join(sorted(allowed))})")
    return value


def array(value, field: str, max_len: int | None = None) -> list:
    if not isinstance(value, list):
        _bad(field, "a list", value)
    if max_len is not None and len(value) > max_len:
        raise FieldError(f"{field}: {len(value):,} entries; at most {max_len:,} are allowed")
    return value


def text(value, field: str, choices=None) -> str:
    if choices is not None and value not in choices:
        _bad(field, "one of " + ", ".join(json.dumps(c) for c in choices), value)
    if not isinstance(value, str):
        _bad(field, "a string", value)
    return value


def flag(value, field: str) -> bool:
    if not isinstance(value, bool):
        _bad(field, "true or false", value)
    return value


def whole(value, field: str, lo: int | None = 0, hi: int | None = None,
          hi_shown: str | None = None) -> int:
    """An integer (not a bool, not 3.0) in [lo, hi] (None: unbounded);
    ``hi_shown`` writes a long bound legibly ("2**128 - 1")."""
    top = hi_shown or (None if hi is None else f"{hi:,}")
    expected = ("a whole number" if lo is None and hi is None
                else f"a whole number >= {lo:,}" if hi is None
                else f"a whole number in [{lo:,}, {top}]")
    if isinstance(value, bool) or not isinstance(value, int):
        _bad(field, expected, value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _bad(field, expected, value)
    return value


def number(value, field: str, lo: float = -math.inf, hi: float = math.inf, *,
           lo_open: bool = False, hi_open: bool = False, finite: bool = True,
           nan: bool = False) -> float:
    """A JSON number (an int is fine) in the given range. ``nan=True`` also
    takes NaN (JSON's NaN, as ``json.dumps`` writes float("nan")); ``finite``
    refuses +-Infinity."""
    if lo == -math.inf and hi == math.inf:
        expected = "a finite number" if finite else "a number"
    elif hi == math.inf:
        expected = f"a number {'>' if lo_open else '>='} {lo:g}"
    elif lo == -math.inf:
        expected = f"a number {'<' if hi_open else '<='} {hi:g}"
    else:
        expected = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    if nan:
        expected += " or NaN"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _bad(field, expected, value)
    value = float(value)
    if math.isnan(value):
        if nan:
            return value
        _bad(field, expected, value)
    if (finite and math.isinf(value)) or value < lo or value > hi \
            or (lo_open and value == lo) or (hi_open and value == hi):
        _bad(field, expected, value)
    return value


def optional(check, value, field: str, *args, **kwargs):
    """``None`` stays None; anything else goes through ``check``."""
    return None if value is None else check(value, field, *args, **kwargs)


def find_huge_int(value, field: str) -> None:
    """FieldError naming the first HugeInt inside a free-form JSON value
    (iterative: the value may be nested as deep as JSON allowed)."""
    stack = [(value, field)]
    while stack:
        v, f = stack.pop()
        if isinstance(v, HugeInt):
            raise FieldError(f"{f}: {describe(v)}, too long to read")
        if isinstance(v, dict):
            stack.extend((x, f"{f}.{k}") for k, x in v.items())
        elif isinstance(v, list):
            stack.extend((x, f"{f}[{i}]") for i, x in enumerate(v))
