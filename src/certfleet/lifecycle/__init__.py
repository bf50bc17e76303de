"""Keeping a fleet healthy without people: renewal planning (:mod:`.planning`), renewal jobs
and lineage (:mod:`.jobs`), rotation campaigns (:mod:`.campaigns`, :mod:`.selection`), CA
rotation checks (:mod:`.ca_health`), settings (:mod:`.settings`) and notifications
(:mod:`.notifications`). Each topic lives in its own module; import from there."""

from __future__ import annotations

__all__: list[str] = []  # a namespace of topic modules: nothing is re-exported here
