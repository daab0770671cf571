"""A non-leading instance answers nothing itself: it forwards each request to the leader, as Marathon's
``LeaderProxyFilter`` does, so clients may talk to any instance behind a plain load balancer.

The forwarded request carries every header but the hop-by-hop ones, ``X-Marathon-Via: 1.1 <me>`` (a request that
already passed through this instance is a loop: 502) and ``X-Forwarded-For``; the leader's answer comes back as is,
with its ``X-Marathon-Leader`` header, plus ``X-Marathon-Via``. ``/v2/events`` is not proxied: a long-lived stream
through a standby would die with the standby and buffer at its mercy, so it is redirected (307) to the leader, which
marathon-python and marathon-lb follow.

Chronos' forwarder (``core/leader_forward.py``) marks requests with its own header and leaves errors to the caller;
Marathon keeps upstream's ``X-Marathon-Via`` loop detection and its 502/504 answers, which operators know. What any
proxy does (hop-by-hop headers out, ``X-Forwarded-For`` extended) is shared with it.
"""

from __future__ import annotations

from urllib.parse import quote

import requests
from flask import Request, Response
from requests.adapters import HTTPAdapter

from mesolite.core.http import json_response
from mesolite.core.leader_forward import HOP_BY_HOP, end_to_end, forwarded_headers

VIA = "X-Marathon-Via"
LEADER = "X-Marathon-Leader"
# The answer's body is re-sent decoded, with its own length.
NOT_RETURNED = HOP_BY_HOP | {"content-encoding"}
NO_LEADER = "Could not determine the current leader"


class LeaderProxy:
    def __init__(self, me: str, connect_timeout: float = 5.0, read_timeout: float = 10.0) -> None:
        self.via = f"1.1 {me}"
        self.timeout = (connect_timeout, read_timeout)
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=64)
        self._session.mount("http://", adapter)

    @staticmethod
    def target(leader: str, request: Request) -> str:
        path = quote(request.path, safe="/:@!$&'()*+,;=-._~")
        query = request.query_string.decode("latin-1")
        return f"http://{leader}{path}" + (f"?{query}" if query else "")

    def redirect(self, leader: str, request: Request) -> Response:
        return Response(status=307, headers={"Location": self.target(leader, request), LEADER: f"http://{leader}"})

    def forward(self, leader: str, request: Request) -> Response:
        seen = ",".join(request.headers.getlist(VIA))
        if self.via in [part.strip() for part in seen.split(",")]:
            return json_response({"message": "Detected proxying loop."}, status=502)
        headers = forwarded_headers(request, ",")
        headers[VIA] = f"{seen}, {self.via}" if seen else self.via
        data = None
        if request.method not in ("GET", "HEAD", "DELETE"):
            data = request.get_data()
            headers.setdefault("Content-Type", "application/json")
        try:
            answer = self._session.request(
                request.method,
                self.target(leader, request),
                data=data,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.ConnectTimeout:
            return json_response({"message": "Connection to leader timed out."}, status=504)
        except requests.ConnectionError:
            return json_response({"message": "Connection to leader refused."}, status=502)
        except requests.Timeout:
            return json_response({"message": "Connection to leader timed out."}, status=504)
        returned = end_to_end(answer.raw.headers.items(), NOT_RETURNED)
        return Response(answer.content, status=answer.status_code, headers=[*returned, (VIA, self.via)])
