"""Debian's headless Chromium driven by Playwright: never a browser download, no network beyond loopback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("MESOLITE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 860}


def screenshot(page: Any, name: str) -> Path:
    """Save the page as the README shows it (docs/screenshots/<name>.png, committed)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
