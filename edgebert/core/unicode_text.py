"""Text from JSON is not always text: JSON can carry a lone surrogate ("\\ud800") that UTF-8 cannot encode, and
that crashes whatever prints or sends it later. Every way in (files, stdin, serve's bodies, the runtime's front
doors) passes text through `valid_unicode` once, so the same input gives the same answer everywhere."""

from __future__ import annotations

import re

SURROGATE = re.compile("[\ud800-\udfff]")


def valid_unicode(item: str | tuple[str, str]) -> str | tuple[str, str]:
    """Text as Unicode can hold it: a lone surrogate (which JSON can carry as "\\ud800" but UTF-8 cannot) becomes
    U+FFFD, the replacement character, as a UTF-8 decoder shows a broken sequence."""
    if isinstance(item, tuple):
        return tuple(valid_unicode(part) for part in item)
    return SURROGATE.sub("\ufffd", item)
