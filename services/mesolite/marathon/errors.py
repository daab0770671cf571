"""The ways the Marathon service refuses a request, as domain errors.

The service and its domain modules raise these without knowing about HTTP; the v2 API (``api/errors.py``) maps each
kind to Marathon's status code and body. Validation failures are ``appdef.Invalid`` (422 ``details[]``) and
malformed JSON is ``appdef.BadJson`` (400), which the API maps the same way.
"""

from __future__ import annotations


class MarathonError(Exception):
    """A refused request; ``message`` is the text Marathon answers with."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(MarathonError):
    """An app, group, task or deployment (or a version of one) that does not exist, in Marathon's wording."""

    @classmethod
    def app(cls, app_id: str, version: str | None = None) -> NotFound:
        return cls(f"App '{app_id}' does not exist" + (f" in version {version}" if version is not None else ""))

    @classmethod
    def group(cls, group_id: str, version: str | None = None) -> NotFound:
        return cls(f"Group '{group_id}' does not exist" + (f" in version {version}" if version is not None else ""))

    @classmethod
    def pod(cls, pod_id: str, version: str | None = None) -> NotFound:
        return cls(f"Pod '{pod_id}' does not exist" + (f" in version {version}" if version is not None else ""))

    @classmethod
    def task(cls, task_id: str) -> NotFound:
        return cls(f"Task '{task_id}' does not exist")

    @classmethod
    def deployment(cls, deployment_id: str) -> NotFound:
        return cls(f"DeploymentPlan {deployment_id} does not exist")


class AlreadyExists(MarathonError):
    """Creating what is there already (an app, a group, an app where a group is)."""


class Locked(MarathonError):
    """The change touches apps that running deployments hold, and was not forced."""

    def __init__(self, deployment_ids: list[str]) -> None:
        super().__init__(
            "App is locked by one or more deployments. Override with the option '?force=true'. "
            "View details at '/v2/deployments/<DEPLOYMENT_ID>'."
        )
        self.deployment_ids = deployment_ids


class TooManyDeployments(MarathonError):
    """``--max_running_deployments`` would be exceeded."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"Max number of running deployments is exceeded: {limit}")


class NotLeading(MarathonError):
    """This instance does not lead (or no leader is known), so it cannot act on the request."""


class UnknownTask(MarathonError):
    """A task id in a request body that names no task (a bad request, not a missing resource)."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"Invalid task id '{task_id}'")


class Unsatisfiable(MarathonError):
    """A valid definition the cluster's settings cannot accommodate (no free service port in the range)."""
