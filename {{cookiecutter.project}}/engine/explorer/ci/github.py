"""A small GitHub REST client on the standard library (urllib): JSON in and out, pagination by the
``Link`` header, and a token that goes only where it was meant to.

The token is sent only to the API's own origin: a ``Link`` or redirect to another host is
refused, and plain ``http://`` is accepted for loopback only (the tests' stand-in). No message
built here contains the token.
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Iterator

DEFAULT_API = "https://api.github.com"
API_VERSION = "2022-11-28"


class ApiError(Exception):
    """GitHub answered with an error status."""

    def __init__(self, status: int, method: str, path: str, message: str):
        self.status, self.method, self.path, self.message = status, method, path, message
        super().__init__(f"HTTP {status} on {method} {path}" + (f": {message}" if message else ""))


class NetworkError(Exception):
    """GitHub could not be reached (DNS, refused connection, timeout, TLS)."""


def _loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect (a renamed repository) only within the API's origin, so the token stays there."""

    def __init__(self, origin: tuple[str, str, int | None]):
        self.origin = origin

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's hook
        if _origin(newurl) != self.origin:
            raise NetworkError(f"refused a redirect away from the API host ({urllib.parse.urlsplit(newurl).hostname})")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (RFC 8288), if any."""
    for part in (header or "").split(","):
        match = re.match(r"\s*<([^>]*)>(.*)", part)
        rel = re.search(r'rel\s*=\s*"?([^";]*)"?', match.group(2)) if match else None
        if match and rel and "next" in rel.group(1).split():
            return match.group(1)
    return None


class GitHubAPI:
    def __init__(self, base_url: str, token: str, timeout: float = 30.0):
        base_url = base_url.rstrip("/")
        scheme, host, _ = _origin(base_url)
        if scheme not in ("https", "http") or not host:
            raise ValueError(f"not an http(s) URL: {base_url}")
        if scheme == "http" and not _loopback(host):
            raise ValueError(f"refusing to send the token over plain http to {host} (use https)")
        self.base_url, self.timeout, self._token = base_url, timeout, token
        self.origin = _origin(base_url)
        self._opener = urllib.request.build_opener(_SameOriginRedirects(self.origin))

    def _url(self, path_or_url: str) -> str:
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        if _origin(url) != self.origin:
            raise NetworkError(f"refused a link away from the API host ({urllib.parse.urlsplit(url).hostname})")
        return url

    def request(self, method: str, path_or_url: str, body: Any = None) -> tuple[Any, dict[str, str]]:
        """(decoded JSON or None, response headers); ``ApiError`` or ``NetworkError`` otherwise."""
        url = self._url(path_or_url)
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers={
            "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "explorer-ci", "Authorization": f"Bearer {self._token}",
            **({"Content-Type": "application/json"} if data is not None else {})})
        shown = urllib.parse.urlsplit(url).path
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                raw = response.read()
                headers = {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read() or b"{}").get("message", "")
            except (json.JSONDecodeError, AttributeError, OSError):
                message = ""
            raise ApiError(exc.code, method, shown, str(message)[:200]) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise NetworkError(f"cannot reach {self.base_url}: {reason}") from None
        return (json.loads(raw) if raw else None), headers

    def paginate(self, path: str) -> Iterator[Any]:
        """Every item of a list endpoint, following ``Link: <...>; rel="next"``."""
        url: str | None = path
        while url:
            page, headers = self.request("GET", url)
            yield from page or []
            url = _next_link(headers.get("link"))
