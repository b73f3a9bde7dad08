"""Credentials never reach a message, a log line, a record or the run summary."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# user info in any URL within a text: scheme://USER[:PASSWORD]@
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@\s]+@")
MASK = "***"


def redact(uri: str) -> str:
    """The URI without its password (state stores, sinks), for messages and summaries: the
    user name of a database or a bucket says where it goes, and is kept."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", f":{MASK}@")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_userinfo(url: str) -> str:
    """A feed's or a page's URL as outputs show it: private feeds are reached as
    https://user:token@host/... and a token may stand where the user name does, so all of the
    user information is masked (https://***@host/...). The request itself still sends it."""
    return _USERINFO_IN_TEXT.sub(lambda match: f"{match['scheme']}{MASK}@", url)
