"""aimc-runner: transformers on simulated PCM analog in-memory-compute tiles."""

__version__ = "0.1.0"
