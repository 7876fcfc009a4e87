"""Secrets in the source lines of reports, shown as ***."""

from __future__ import annotations

_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "credential")


def masked(source: str) -> str:
    """The source line with secrets shown as ***: literals given to secret-looking names,
    URL passwords (`user:***@`) and secret-looking query parameters (`?token=***`)."""
    lowered = source.lower()
    url_password = "://" in source and "@" in source
    if not url_password and not any(word in lowered for word in _SECRET_WORDS):
        return source  # the common case: no regular expression at all
    import re

    if url_password:  # `scheme://user:PASSWORD@host`: the password
        source = re.sub(r"""(?i)(\b[a-z][a-z0-9+.-]*://[^\s/?#@:'"]*:)[^\s/?#@'"]+@""",
                        r"\1***@", source)
    # `?api_key=...`, `&token=...` in a URL: the value
    source = re.sub(r"""(?i)([?&;][\w.-]*(?:key|token|secret|passw(?:or)?d|auth|credential)"""
                    r"""[\w.-]*=)[^&#\s'"]*""", r"\1***", source)
    # `api_key="sk-..."`, `token='...'`, `"password": "..."`: the literal is replaced
    return re.sub(r"""(?i)((?:key|token|secret|passw(?:or)?d|auth\w*|credentials?)['"]?"""
                  r"""\s*[=:]\s*[rbuf]{0,2})(['"])(?:\\.|(?!\2).)*\2""",
                  lambda m: f"{m.group(1)}{m.group(2)}***{m.group(2)}", source)
