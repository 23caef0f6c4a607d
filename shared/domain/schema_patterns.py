"""Which patterns contracts may use, decided when a contract is saved (and again when `process`
compiles it), with the reason in plain words when one is refused.

Patterns are matched by jsonschema-rs on the Rust `regex` crate, a linear-time engine
(`schema_validator`). What is allowed is decided here, on RE2, which reads nearly the same syntax,
is linear-time too, and says why it cannot run a pattern: lookaround, backreferences, atomic
groups, counted repetitions above 1,000, or a pattern that compiles to more than 5,000
instructions. JSON Schema patterns are ECMA-262 regular expressions; `to_re2` rewrites the escapes
both engines spell differently, and its result is what the library matches with.
"""

from __future__ import annotations

import functools
import re

import re2

# A string longer than this is not matched: it is a Pattern-Mismatch saying so, whatever the
# pattern (docs/CONTRACTS.md, "Patterns").
MAX_PATTERN_VALUE_CHARS = 4096
# RE2 instructions a pattern may compile to (`^[a-z]{1,1000}$` is ~2,000, `^.{0,255}$` ~2,300).
MAX_PATTERN_PROGRAM_SIZE = 5000
# RE2 refuses counted repetitions above this.
MAX_REPEAT = 1000

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is raised, with its reason; RE2 would also print it
# RE2's error (how it starts) -> the construct, in plain words.
UNSUPPORTED = (
    ("invalid perl operator: (?=", "lookahead (?=...)"),
    ("invalid perl operator: (?!", "negative lookahead (?!...)"),
    ("invalid perl operator: (?<=", "lookbehind (?<=...)"),
    ("invalid perl operator: (?<!", "negative lookbehind (?<!...)"),
    ("invalid perl operator: (?>", "an atomic group (?>...)"),
    ("invalid escape sequence: \\k", "a named backreference (\\k<name>)"),
    ("bad repetition operator: ", "a possessive or repeated quantifier (e.g. a*+ or a**)"),
)
_BACKREFERENCE = re.compile(r"invalid escape sequence: \\[1-9]")
WHY_LINEAR = (
    "which contract patterns cannot use: they run on a linear-time engine without "
    "lookaround or backreferences, so that no pattern can stall validation"
)


class PatternError(ValueError):
    """A pattern contracts cannot run; the message says why, in plain words."""


@functools.lru_cache(maxsize=4096)
def checked_pattern(pattern: str) -> str:
    """The pattern in the syntax the validator matches with (`to_re2`), or `PatternError` saying
    why contracts cannot run it. Cached per pattern text: every contract version compiles it."""
    translated = to_re2(pattern)
    try:
        regexp = re2.compile(translated, _OPTIONS)
    except re2.error as error:
        raise PatternError(_reason(error)) from None
    size = regexp.programsize
    if size > MAX_PATTERN_PROGRAM_SIZE:
        raise PatternError(
            f"is too large: it compiles to {size} RE2 instructions, at most "
            f"{MAX_PATTERN_PROGRAM_SIZE} are allowed (a counted repetition such as {{1,1000}} "
            "copies what it repeats; minLength and maxLength bound a length for free)"
        )
    return translated


def too_long_to_match(text: str) -> bool:
    return len(text) > MAX_PATTERN_VALUE_CHARS


def too_long_message(text: str) -> str:
    return (
        f"is {len(text)} characters; patterns are matched against at most {MAX_PATTERN_VALUE_CHARS}"
    )


def _reason(error: re2.error) -> str:
    detail = error.args[0] if error.args else ""
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    for start, construct in UNSUPPORTED:
        if text.startswith(start):
            return f"uses {construct}, {WHY_LINEAR}"
    if _BACKREFERENCE.match(text):
        return f"uses a backreference ({text.rsplit(' ', 1)[-1]}), {WHY_LINEAR}"
    if text.startswith("invalid repetition size"):
        return f"repeats more than {MAX_REPEAT} times ({text.rsplit(' ', 1)[-1]}): RE2's limit"
    if text.startswith("pattern too large"):
        return "is too large for RE2 to compile"
    return f"is not a regular expression contracts can run: {text}"


# Matches everything / nothing (ECMA-262's `[^]` and `[]`, which neither engine reads).
_ANY = r"[\x{0}-\x{10FFFF}]"
_NOTHING = r"[^\x{0}-\x{10FFFF}]"
_HEX = frozenset("0123456789abcdefABCDEF")


def to_re2(pattern: str) -> str:
    """An ECMA-262 pattern in the syntax RE2 and the Rust `regex` crate both read: `\\uXXXX`
    (surrogate pairs joined) and `\\u{...}` become `\\x{...}`, `\\cX` its control character,
    `[\\b]` a backspace, `[^]` and `[]` any and no character. `\\Z` (Python's end of text, in
    contracts written before RE2) becomes `\\z`. Everything else passes as it is; the engines
    refuse what they cannot run."""
    out: list[str] = []
    in_class = False
    index = 0
    end = len(pattern)
    while index < end:
        char = pattern[index]
        if char == "\\" and index + 1 < end:
            escaped = pattern[index + 1]
            if escaped == "u":
                code, length = _unicode_escape(pattern, index)
                if code is not None:
                    out.append(f"\\x{{{code:X}}}")
                    index += length
                    continue
            elif escaped == "c" and index + 2 < end and pattern[index + 2].isascii():
                letter = pattern[index + 2]
                if letter.isalpha():
                    out.append(f"\\x{{{ord(letter) % 32:X}}}")
                    index += 3
                    continue
            elif escaped == "b" and in_class:
                out.append("\\x{8}")
                index += 2
                continue
            elif escaped == "Z" and not in_class:
                out.append("\\z")
                index += 2
                continue
            out.append(pattern[index : index + 2])
            index += 2
            continue
        if char == "[" and not in_class:
            if pattern.startswith("[^]", index):
                out.append(_ANY)
                index += 3
                continue
            if pattern.startswith("[]", index):
                out.append(_NOTHING)
                index += 2
                continue
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        index += 1
    return "".join(out)


def _unicode_escape(pattern: str, index: int) -> tuple[int | None, int]:
    """The code point of the `\\u` escape at `index` and its length, or (None, 0)."""
    if pattern.startswith("\\u{", index):
        close = pattern.find("}", index + 3)
        digits = pattern[index + 3 : close] if close > 0 else ""
        if digits and len(digits) <= 6 and set(digits) <= _HEX:
            return int(digits, 16), close - index + 1
        return None, 0
    digits = pattern[index + 2 : index + 6]
    if len(digits) != 4 or not set(digits) <= _HEX:
        return None, 0
    code = int(digits, 16)
    low = pattern[index + 8 : index + 12]
    if (
        0xD800 <= code <= 0xDBFF
        and pattern.startswith("\\u", index + 6)
        and len(low) == 4
        and set(low) <= _HEX
        and 0xDC00 <= int(low, 16) <= 0xDFFF
    ):
        return 0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00), 12
    return code, 6
