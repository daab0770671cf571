"""Forward the current Flask request to the leading instance and hand its answer back unchanged.

Chronos' non-leaders proxy rather than redirect (its ``RedirectFilter`` copies the request and streams the reply), so
clients that know a single address, or a list they try in order, keep working through any instance. The reply's
bytes are passed through as they came (still compressed if they were), with the leader's status and headers.

A request already forwarded once is never forwarded again: two instances that briefly disagree about who leads
would otherwise bounce it between them; the second one answers 503 instead.

Marathon's proxy (``marathon/proxy.py``) differs on the wire on purpose (upstream's ``X-Marathon-Via`` loop detection,
502/504 answers, a 307 for the event stream) and shares only what any HTTP proxy must do: :func:`forwarded_headers`
and :func:`end_to_end`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import requests
from flask import Request, Response, request

FORWARDED_HEADER = "X-Mesolite-Forwarded-By"
# RFC 7230 §6.1 hop-by-hop headers, plus those the HTTP layers on each side compute themselves.
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def end_to_end(headers: Iterable[tuple[str, str]], drop: set[str] | None = None) -> list[tuple[str, str]]:
    """The headers a proxy passes on: not the hop-by-hop ones (nor those in ``drop``, lower case)."""
    dropped = HOP_BY_HOP if drop is None else drop
    return [(name, value) for name, value in headers if name.lower() not in dropped]


def forwarded_headers(incoming: Request, separator: str) -> dict[str, str]:
    """The request's end-to-end headers for the leader, with this hop's client appended to ``X-Forwarded-For``
    (``separator`` between the hops: Marathon's filter writes ``,``, Chronos' ``, ``)."""
    headers = dict(end_to_end(incoming.headers.items()))
    hops = [hop for hop in (incoming.headers.get("X-Forwarded-For"), incoming.remote_addr) if hop]
    headers["X-Forwarded-For"] = separator.join(hops)
    return headers


class ForwardError(Exception):
    """The leader could not be reached, or the request already went through a proxy."""


def already_forwarded() -> bool:
    return FORWARDED_HEADER in request.headers


def forward(base_url: str, via: str, timeout: float = 60.0) -> Response:
    """Send the current request to ``base_url`` (``http://host:port``) and return its answer as a Flask response.

    ``via`` names this instance in the forwarding header (operators see where a request came through).
    """
    if already_forwarded():
        raise ForwardError(f"request already forwarded by {request.headers[FORWARDED_HEADER]}")
    headers = forwarded_headers(request, ", ")
    headers[FORWARDED_HEADER] = via
    url = base_url.rstrip("/") + (request.full_path if request.query_string else request.path)
    try:
        upstream = requests.request(
            request.method,
            url,
            headers=headers,
            data=request.get_data(cache=True),
            stream=True,
            allow_redirects=False,
            timeout=(5.0, timeout),
        )
    except requests.RequestException as exc:
        raise ForwardError(f"leader at {base_url} unreachable: {exc}") from exc
    reply_headers = end_to_end(upstream.raw.headers.items())
    length = upstream.headers.get("Content-Length")
    if length is not None:
        reply_headers.append(("Content-Length", length))

    def body() -> Iterator[bytes]:
        try:
            yield from upstream.raw.stream(64 * 1024, decode_content=False)
        finally:
            upstream.close()

    return Response(body(), status=upstream.status_code, headers=reply_headers, direct_passthrough=True)
