"""SSML ``<say-as>`` spelled out in Chinese characters (daemon process, pure logic), so that every engine reads
it the same way, whatever its own text normalisation would have guessed for the digits.

- ``digits``: one digit at a time (``2024`` -> 二零二四).
- ``cardinal``: a number (``-1,205.5`` -> 负一千二百零五点五; up to 16 integer digits).
- ``telephone``: digit by digit with 1 read 幺 as on the phone, groups (split at spaces, dashes, parentheses)
  separated by a comma (a short prosodic break); a leading ``+`` is 加.
- ``date``: ``2024-03-05``, ``2024/3/5``, ``2024.03.05``, ``2024年3月5日``, or year and month only: the year
  digit by digit, month and day as numbers (二零二四年三月五日).
"""

from __future__ import annotations

import re

from tts_vocab.errors import InvalidRequest

__all__ = ["INTERPRETATIONS", "cardinal", "spell_out"]

INTERPRETATIONS = ("digits", "cardinal", "telephone", "date")
DIGITS = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_LARGE_UNITS = ("", "万", "亿", "万亿")
_NUMBER = re.compile(r"([+-]?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
_PHONE = re.compile(r"\+?[\d\s()-]+")
_DATE = re.compile(r"(\d{4})\s*(?:[-/.年])\s*(\d{1,2})\s*(?:(?:[-/.月])\s*(\d{1,2})\s*日?|月)?")


def spell_out(interpret_as: str, text: str, field: str = "text") -> str:
    """``text`` read as ``interpret_as``, in Chinese characters; InvalidRequest naming ``field`` if it cannot be."""
    text = text.strip()
    if interpret_as == "digits":
        if not text.isascii() or not text.isdigit():
            raise InvalidRequest(f"SSML <say-as interpret-as='digits'> needs digits only, got {text!r}", field)
        return "".join(DIGITS[int(d)] for d in text)
    if interpret_as == "cardinal":
        return _cardinal_text(text, field)
    if interpret_as == "telephone":
        return _telephone(text, field)
    if interpret_as == "date":
        return _date(text, field)
    raise InvalidRequest(f"SSML <say-as interpret-as={interpret_as!r}>: expected one of {', '.join(INTERPRETATIONS)}",
                         field)


def _below_10000(n: int) -> str:
    out, zero = "", False
    for position in range(3, -1, -1):
        digit = n // 10**position % 10
        if digit == 0:
            zero = bool(out)  # a zero is read only between two non-zero digits
            continue
        out += ("零" if zero else "") + DIGITS[digit] + _SMALL_UNITS[position]
        zero = False
    return out


def cardinal(n: int) -> str:
    """A non-negative integer below 10**16 in Chinese numerals (10 -> 十, 1005 -> 一千零五, 10001 -> 一万零一)."""
    if n == 0:
        return DIGITS[0]
    groups = [n // 10**(4 * i) % 10**4 for i in range(len(_LARGE_UNITS))]
    out, gap = "", False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            gap = bool(out)
            continue
        if out and (gap or group < 1000):
            out += DIGITS[0]
        out += _below_10000(group) + _LARGE_UNITS[index]
        gap = False
    return out[1:] if out.startswith("一十") else out


def _cardinal_text(text: str, field: str) -> str:
    match = _NUMBER.fullmatch(text)
    digits = match.group(2).replace(",", "") if match else ""
    if not match or len(digits) > 16:
        raise InvalidRequest(f"SSML <say-as interpret-as='cardinal'> needs a number (at most 16 digits before the "
                             f"point), got {text!r}", field)
    sign, fraction = match.group(1), match.group(3)
    spoken = ("负" if sign == "-" else "") + cardinal(int(digits))
    return spoken + ("点" + "".join(DIGITS[int(d)] for d in fraction) if fraction else "")


def _telephone(text: str, field: str) -> str:
    if not _PHONE.fullmatch(text) or not any(c.isdigit() for c in text):
        raise InvalidRequest(f"SSML <say-as interpret-as='telephone'> needs a phone number, got {text!r}", field)
    groups = [g for g in re.split(r"[\s()-]+", text.lstrip("+")) if g]
    spoken = "，".join("".join("幺" if d == "1" else DIGITS[int(d)] for d in group) for group in groups)
    return ("加" if text.startswith("+") else "") + spoken


def _date(text: str, field: str) -> str:
    match = _DATE.fullmatch(text)
    month = int(match.group(2)) if match else 0
    day = int(match.group(3)) if match and match.group(3) else None
    if not match or not 1 <= month <= 12 or (day is not None and not 1 <= day <= 31):
        raise InvalidRequest(f"SSML <say-as interpret-as='date'> needs a date such as 2024-03-05, got {text!r}", field)
    spoken = "".join(DIGITS[int(d)] for d in match.group(1)) + "年" + cardinal(month) + "月"
    return spoken + (cardinal(day) + "日" if day is not None else "")
