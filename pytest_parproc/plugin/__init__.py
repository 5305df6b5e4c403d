"""The pytest plugin (entry point ``parproc``). Registered; it takes over nothing yet."""

from __future__ import annotations
