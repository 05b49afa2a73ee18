"""Where a `next` (or `back`) parameter may send the browser: a path on this site, read the
way a browser reads it, or nowhere.

Checking the raw text is not enough: `/login?next=/%09/evil.example` passed a
"starts with '/' but not '//'" test, and the browser, which drops tabs and newlines anywhere
in a URL and reads `\\` as `/`, followed `/\\t/evil.example` to `//evil.example`, another
site. A newline in the header also made the redirect itself fail (a 500). So the target is
first normalised as browsers do, then checked, and the normalised text is what is sent.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

# What the WHATWG URL parser removes from anywhere in a URL.
_REMOVED = str.maketrans("", "", "\t\n\r")
# What it strips from both ends: C0 controls and space.
_ENDS = "".join(chr(code) for code in range(0x21))
# Characters kept as they are when the path is percent-encoded (existing escapes stay).
_SAFE = "/?&=#%:@!$'()*+,;~-._"


def local_target(raw: str | None) -> str | None:
    """Return the same-site path `raw` leads to, as the browser would read it, or None."""
    if not raw:
        return None
    text = raw.strip(_ENDS).translate(_REMOVED).replace("\\", "/")
    if not text.startswith("/") or text.startswith("//"):
        return None  # absolute (https:, javascript:), scheme-relative or relative
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in text):
        return None  # other control characters have no place in a path
    parts = urlsplit(text)
    if parts.scheme or parts.netloc:
        return None
    return quote(text, safe=_SAFE)


def redirect_target(raw: str | None, fallback: str) -> str:
    """Return `raw` as a same-site path, or the fallback when it would leave the site."""
    return local_target(raw) or fallback
