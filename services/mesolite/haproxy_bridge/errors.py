"""The one error the routing layer raises about an app: its labels cannot become a safe configuration."""

from __future__ import annotations


class LabelError(ValueError):
    """An app's labels that no configuration could express; the app is left out, the reason kept (on /health)."""
