"""Is the Hugging Face hub reachable? Answered in seconds, so that offline machines fail fast, not after retries."""

from __future__ import annotations

import os
import socket
import threading
from typing import Optional
from urllib.parse import urlparse

OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")


def _offline_env() -> Optional[str]:
    """The name of an offline switch that is set, if any."""
    for var in OFFLINE_FLAGS:
        if os.environ.get(var, "").strip().upper() in ("1", "ON", "YES", "TRUE"):
            return var
    return None


def unreachable_reason(timeout_s: float = 3.0) -> Optional[str]:
    """Why the hub cannot be reached, or None if a TCP connection to it opens within ``timeout_s``.

    A cheap check up front, because the hub clients retry for minutes on a network that drops packets.
    """
    var = _offline_env()
    if var:
        return f"{var} is set"
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname, url.port or (80 if url.scheme == "http" else 443)
    result: list = []

    def connect():
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            result.append(None)
        except OSError as e:
            result.append(f"cannot connect to {host}:{port} ({e})")

    # In a thread, because the DNS lookup inside create_connection ignores the timeout and can hang.
    t = threading.Thread(target=connect, daemon=True)
    t.start()
    t.join(timeout_s + 0.5)
    return result[0] if result else f"no answer from {host}:{port} within {timeout_s:g} s"
