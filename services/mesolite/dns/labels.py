"""DNS label sanitising exactly as Mesos-DNS does it (``records/labels``), because clients already hard-code the
names it produces: ``Chronos 2.0`` must become ``chronos-2-0`` here too, and a 64-character task name must be cut
where upstream cuts it.
"""

from __future__ import annotations

from collections.abc import Callable

LabelFunc = Callable[[str], str]

_MAPPING = {c: c for c in "abcdefghijklmnopqrstuvwxyz0123456789"}
_MAPPING.update({c.upper(): c for c in "abcdefghijklmnopqrstuvwxyz"})
_MAPPING.update({"-": "-", ".": "-", "_": "-"})


def _label(name: str, max_len: int, left: str) -> str:
    mapped = "".join(_MAPPING.get(c, "") for c in name)
    trimmed = mapped.lstrip(left)
    size = min(len(trimmed), max_len)
    head = trimmed[:size].rstrip("-")
    if len(head) == size:
        return head
    # Cutting left trailing dashes: upstream refills the freed room from what followed the cut.
    tail = trimmed[size:].lstrip("-")
    return head + tail[: size - len(head)]


def rfc1123(name: str) -> str:
    """The default label rule: up to 63 characters of ``[a-z0-9-]``, not starting or ending with ``-``."""
    return _label(name, 63, "-")


def rfc952(name: str) -> str:
    """The old rule (``EnforceRFC952``): 24 characters, and no leading digit either."""
    return _label(name, 24, "-0123456789")


def domain_frag(name: str, label: LabelFunc) -> str:
    """Framework names keep their dots as label separators (``marathon.prod`` → two labels); empty parts vanish."""
    return ".".join(part for part in (label(p) for p in name.split(".")) if part)
