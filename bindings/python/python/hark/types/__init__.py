"""psycopg 3's ``psycopg.types`` names that apply to hark: the `json` wrappers."""

from __future__ import annotations

from . import json

__all__ = ["json"]
