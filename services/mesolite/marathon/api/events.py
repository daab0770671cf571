"""``/v2/events`` (server-sent events, ``event_type=`` filters) and ``/v2/eventSubscriptions`` (HTTP callbacks,
only with ``--event_subscriber http_callback``, as in Marathon ≤ 1.4)."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable, Iterator

from flask import Blueprint, Response, request

from mesolite.core.http import json_response
from mesolite.marathon.appdef import Invalid
from mesolite.marathon.events import Subscription
from mesolite.marathon.service import Marathon, MarathonConfig

# Idle streams get a blank line this often, so proxies and idle timeouts keep them open.
KEEPALIVE_SECONDS = 15.0
CALLBACKS_OFF = (
    "http event callback system is not running on this Marathon instance. "
    'Please re-start this instance with "--event_subscriber http_callback".'
)


class EventsApi:
    def __init__(
        self, config: MarathonConfig, marathon: Marathon, streamed: Callable[[int], None] = lambda n: None
    ) -> None:
        self.config = config
        self.m = marathon
        self.streamed = streamed  # bytes sent on event streams (marathon.http.responses.event-stream.size)

    def blueprint(self) -> Blueprint:
        bp = Blueprint("marathon_events", __name__)
        bp.add_url_rule("/v2/events", view_func=self.events, methods=["GET"])
        bp.add_url_rule("/v2/eventSubscriptions", view_func=self.subscriptions, methods=["GET", "POST", "DELETE"])
        return bp

    def events(self) -> Response:
        if "text/event-stream" not in request.headers.get("Accept", ""):
            return json_response({"message": "HTTP 406 Not Acceptable: use 'Accept: text/event-stream'"}, status=406)
        subscription = self.m.events.subscribe(request.args.getlist("event_type"), request.remote_addr or "")
        return Response(
            self._stream(subscription),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def _stream(self, subscription: Subscription) -> Iterator[str]:
        try:
            yield "\n"  # sends the headers now, even when the filter holds back event_stream_attached
            while True:
                try:
                    event = subscription.queue.get(timeout=KEEPALIVE_SECONDS)
                except queue.Empty:
                    yield "\n"
                    continue
                if event is None:  # the bus detached us: this instance stopped leading
                    return
                chunk = f"event: {event['eventType']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n"
                self.streamed(len(chunk))
                yield chunk
        finally:
            self.m.events.unsubscribe(subscription)

    def subscriptions(self) -> Response:
        if self.config.event_subscriber != "http_callback":
            return json_response({"message": CALLBACKS_OFF}, status=400)
        if request.method == "GET":
            return json_response({"callbackUrls": list(self.m.state.subscribers)})
        url = request.args.get("callbackUrl")
        if not url:
            raise Invalid([("/callbackUrl", "must not be empty")])
        subscribed = request.method == "POST"
        self.m.set_callback(url, subscribed)
        event_type = "subscribe_event" if subscribed else "unsubscribe_event"
        event = self.m.events.publish(event_type, clientIp=request.remote_addr, callbackUrl=url)
        return json_response({"callbackUrl": url, "clientIp": request.remote_addr, "eventType": event["eventType"]})
