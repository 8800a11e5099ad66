"""Secrets out of what is printed or logged: every URL shown to a person goes through
:func:`mask_url`."""

from __future__ import annotations

import re

MASK = "***"
_URL_PASSWORD = re.compile(r"(://[^/\s:@]*):[^/\s@]*@")
_SECRET_PARAM = re.compile(r"(?i)([?&;](?:password|passwd|pass|pwd|secret|token)=)[^&;#]*")
_SECRET_PARAM_IN_TEXT = re.compile(
    r"(?i)([?&;](?:password|passwd|pass|pwd|secret|token|access_token|api_key|code)=)"
    r"[^&;#\s\"'\\]*"
)


def mask_url(url: str) -> str:
    """``url`` with the password of its user information and the values of password-like query
    parameters replaced by ``***``; everything else (scheme, user, host, port, path) stays
    readable. Works on database and Redis URLs (``postgresql+asyncpg://u:p@h/db``,
    ``redis://:p@h:6379/0``, ``rediss://u:p@h``), on values without a scheme (``u:p@h``) and on
    passwords holding unescaped ``@``, ``/`` or ``:``: the user information is everything before
    the last ``@`` (an ``@`` later in the URL masks more than needed, never less)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    at = rest.rfind("@")
    if at != -1:
        userinfo, host = rest[:at], rest[at:]
        user, colon, _password = userinfo.partition(":")
        if colon:
            rest = user + ":" + MASK + host
    masked = _SECRET_PARAM.sub(lambda m: m.group(1) + MASK, rest)
    return f"{scheme}{sep}{masked}"


def mask_text(text: str) -> str:
    """``text`` (a log line, a message) with the password of every URL in it replaced by
    ``***`` (``scheme://user:password@host``), and the value of every secret-like query
    parameter (``?token=``, ``&code=``, ...) too, up to the next space or quote."""
    text = _URL_PASSWORD.sub(r"\1:" + MASK + "@", text)
    return _SECRET_PARAM_IN_TEXT.sub(lambda m: m.group(1) + MASK, text)


SECRET_PATHS = ("/invite/",)
"""Paths whose rest is a secret (an invitation link's token)."""


def mask_path(path: str) -> str:
    """``path`` as it may be logged: the token of an invitation link replaced by ``***``."""
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "***"
    return path
