"""Forward the current Flask request to the leading instance and hand its answer back unchanged.

Chronos' non-leaders proxy rather than redirect (its ``RedirectFilter`` copies the request and streams the reply), so
clients that know a single address, or a list they try in order, keep working through any instance. The reply's
bytes are passed through as they came (still compressed if they were), with the leader's status and headers.

A request already forwarded once is never forwarded again: two instances that briefly disagree about who leads
would otherwise bounce it between them; the second one answers 503 instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests
from flask import Response, request

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
    headers = {name: value for name, value in request.headers.items() if name.lower() not in HOP_BY_HOP}
    headers[FORWARDED_HEADER] = via
    peer = request.remote_addr or ""
    prior = request.headers.get("X-Forwarded-For")
    headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
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
    reply_headers = [(name, value) for name, value in upstream.raw.headers.items() if name.lower() not in HOP_BY_HOP]
    length = upstream.headers.get("Content-Length")
    if length is not None:
        reply_headers.append(("Content-Length", length))

    def body() -> Iterator[bytes]:
        try:
            yield from upstream.raw.stream(64 * 1024, decode_content=False)
        finally:
            upstream.close()

    return Response(body(), status=upstream.status_code, headers=reply_headers, direct_passthrough=True)
