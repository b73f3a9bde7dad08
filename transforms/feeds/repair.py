"""Repairs to feed bytes that would make feedparser fail on the whole feed.

Some publishing systems write characters outside the Basic Multilingual Plane (emoji, rare CJK)
as two UTF-16 surrogate character references, `&#55357;&#56832;` for U+1F600, and some leave a
lone one behind. XML allows neither, and feedparser raises on them instead of reporting the
feed ill-formed, so one such title would lose every entry of the feed. A pair becomes the
reference of the character it encodes, a lone one becomes U+FFFD, and nothing else is touched.
"""

from __future__ import annotations

import re

_REFERENCE = re.compile(rb"&#(?:[xX]([0-9a-fA-F]{1,8})|([0-9]{1,10}));")
# A quick test that a body has any surrogate reference at all (hex D800-DFFF, 55296-57343).
_MAYBE_SURROGATE = re.compile(rb"&#(?:[xX]0*[dD][89a-fA-F][0-9a-fA-F]{2}|0*5[5-7][0-9]{3});")
_REPLACEMENT = b"&#xFFFD;"


def _value(match: re.Match[bytes]) -> int:
    hex_digits, decimal = match.groups()
    return int(hex_digits, 16) if hex_digits is not None else int(decimal)


def repair_surrogate_references(body: bytes) -> bytes:
    """`body` with surrogate character references made valid (see the module docstring).

    Works on the bytes of any ASCII-compatible encoding, so feedparser still sniffs the
    encoding from the document itself."""
    if not _MAYBE_SURROGATE.search(body):
        return body
    out: list[bytes] = []
    position = 0
    matches = list(_REFERENCE.finditer(body))
    skip_next = False
    for index, match in enumerate(matches):
        if skip_next:
            skip_next = False
            continue
        value = _value(match)
        if not 0xD800 <= value <= 0xDFFF:
            continue
        out.append(body[position:match.start()])
        position = match.end()
        following = matches[index + 1] if index + 1 < len(matches) else None
        if (value <= 0xDBFF and following is not None and following.start() == match.end()
                and 0xDC00 <= _value(following) <= 0xDFFF):
            combined = 0x10000 + ((value - 0xD800) << 10) + (_value(following) - 0xDC00)
            out.append(b"&#x%X;" % combined)
            position = following.end()
            skip_next = True
        else:
            out.append(_REPLACEMENT)
    out.append(body[position:])
    return b"".join(out)
