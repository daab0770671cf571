"""Why the master refuses a call, in its own terms; ``api.py`` turns each kind into Mesos' status code.

The message is the one Mesos answers with (schedulers and tools match on it), so it travels with the error; the
status code does not, because the state machine does not speak HTTP.
"""

from __future__ import annotations


class MasterError(Exception):
    """A call the master refuses outright."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidCall(MasterError):
    """The call is malformed, or contradicts what the master knows (Mesos: 400 Bad Request)."""


class UnknownFramework(MasterError):
    """The call names a framework this master does not know (Mesos: 400, "Framework cannot be found")."""

    def __init__(self, message: str = "Framework cannot be found") -> None:
        super().__init__(message)


class NotSubscribed(MasterError):
    """The framework is known but has no open event stream (Mesos: 403 Forbidden)."""

    def __init__(self, message: str = "Framework is not subscribed") -> None:
        super().__init__(message)


class UnsupportedCall(MasterError):
    """A call type Mesos itself does not implement (Mesos: 501 Not Implemented)."""


class NotFound(MasterError):
    """The call names an object the master does not know (Mesos: 404 Not Found)."""


class Conflict(MasterError):
    """The call cannot be carried out in the object's present state (Mesos: 409 Conflict)."""


class Unavailable(MasterError):
    """The master cannot carry the call out now (Mesos: 503 Service Unavailable)."""


class AgentRefused(MasterError):
    """An agent the master will not admit (its machine is DOWN, or it was marked gone): Mesos answers its
    registration with a ShutdownMessage carrying this message."""
