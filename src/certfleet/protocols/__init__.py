"""Enrolment protocols (ACME, later SCEP and EST): the middle layer between the HTTP edge and
the application services. Each protocol package declares the narrow interfaces it needs and
never imports another protocol package or a web framework."""

from __future__ import annotations

__all__: list[str] = []  # one subpackage per protocol; nothing is re-exported here
