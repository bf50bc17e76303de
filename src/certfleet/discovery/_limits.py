"""Limits named by the scan commands' defaults, apart from the scanners that apply them: a
command that only parses its options does not import the file scanner (formats, keystores)."""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_FILE_SIZE"]

DEFAULT_MAX_FILE_SIZE = 5 * 1024 * 1024
