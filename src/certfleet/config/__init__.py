"""Typed settings, loaded once: defaults, then the data directory's config file, then the
environment, then command-line flags. Components receive only the slice they need."""

from __future__ import annotations

from certfleet.config._acme import AcmeSettings, parse_resolver
from certfleet.config._settings import (
    CONFIG_FILE_NAME,
    DataDir,
    ServerSettings,
    Settings,
    default_data_dir,
    load_settings,
    parse_bind,
    read_section,
)

__all__ = [
    "CONFIG_FILE_NAME",
    "AcmeSettings",
    "DataDir",
    "ServerSettings",
    "Settings",
    "default_data_dir",
    "load_settings",
    "parse_bind",
    "parse_resolver",
    "read_section",
]
