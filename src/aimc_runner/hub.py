"""Is the Hugging Face hub reachable? Answered in seconds, so that offline machines fail fast, not after retries."""

from __future__ import annotations

import functools
import os
import socket

HUB_HOST = "huggingface.co"


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """False when an offline flag is set or a TCP connection to the hub cannot be opened within ``timeout_s``."""
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(flag, "").strip().lower() in ("1", "true", "yes", "on"):
            return False
    host = os.environ.get("HF_ENDPOINT", f"https://{HUB_HOST}").split("://", 1)[-1].split("/", 1)[0]
    try:
        with socket.create_connection((host.split(":")[0], 443), timeout=timeout_s):
            return True
    except OSError:
        return False
