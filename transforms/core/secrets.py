"""Passwords kept out of job options: a PostgreSQL URI may name a Google Secret Manager secret
instead of carrying the password.

A job's options are shown to anyone who can view the job (Dataflow's job page, a Flex
Template's parameters), and its workers have no environment of their own to read PGPASSWORD
from. With `password_secret=projects/P/secrets/S/versions/V` in the URI's query, the password
is fetched where the connection is made (the launcher and each worker process, once) and
never appears in the options. Elsewhere (Kubernetes, Docker Compose) the PostgreSQL client
library's own PGPASSWORD environment variable does the same without this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

PASSWORD_SECRET = "password_secret"


class SecretError(Exception):
    """A secret a URI names could not be read; the message says which and why."""


@functools.lru_cache(maxsize=16)
def secret_manager_value(name: str) -> str:
    """The text of a Google Secret Manager secret version (`projects/P/secrets/S/versions/V`)."""
    from google.cloud import secretmanager  # with newsbeam[gcp]; only such URIs need it

    response = secretmanager.SecretManagerServiceClient().access_secret_version(name=name)
    return str(response.payload.data.decode("utf-8"))


def with_secret_password(uri: str, fetch: Callable[[str], str] | None = None) -> str:
    """`uri` with its `password_secret` query parameter replaced by the secret (read with
    `fetch`, by default from Secret Manager) as the URI's password; a URI without one is
    returned as it is."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = [value for key, value in query if key == PASSWORD_SECRET]
    if not names:
        return uri
    try:
        secret = (fetch or secret_manager_value)(names[-1])
    except Exception as error:  # whatever the client raises: one line naming the secret
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise SecretError(f"{PASSWORD_SECRET} {names[-1]}: {first_line}") from None
    password = quote(secret.strip(), safe="")
    user = quote(parts.username or "", safe="")
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address goes back between brackets
        host = f"[{host}]"
    netloc = f"{user}:{password}@{host}" + (f":{parts.port}" if parts.port else "")
    rest = urlencode([(key, value) for key, value in query if key != PASSWORD_SECRET])
    return urlunsplit(parts._replace(netloc=netloc, query=rest))
