"""Typed settings, loaded once: defaults, then the data directory's config file, then the
environment, then command-line flags. Components receive only the slice they need.

``config.toml`` has three top-level keys (``database_url``, ``ca_passphrase_file``,
``public_base_url``) and the sections ``[server]``, ``[acme]``, ``[revocation]``,
``[lifecycle]`` and ``[metrics]``. :func:`load_settings` reads the file once; each section is a
frozen dataclass built by one typed table parser, and an unknown key or section is refused
with the closest known name. The section types live here because ``config`` sits below the
packages that use them; those packages re-export their own."""

from __future__ import annotations

from certfleet.config._acme import AcmeSettings, parse_resolver
from certfleet.config._addresses import parse_bind
from certfleet.config._lifecycle import LifecycleSettings
from certfleet.config._metrics import MetricsScope, MetricsSettings
from certfleet.config._revocation import MAX_CRL_VALIDITY, RevocationSettings
from certfleet.config._settings import (
    CONFIG_FILE_NAME,
    SECTION_NAMES,
    DataDir,
    ServerSettings,
    Settings,
    default_data_dir,
    load_settings,
)
from certfleet.config._table import parse_table

__all__ = [
    "CONFIG_FILE_NAME",
    "MAX_CRL_VALIDITY",
    "SECTION_NAMES",
    "AcmeSettings",
    "DataDir",
    "LifecycleSettings",
    "MetricsScope",
    "MetricsSettings",
    "RevocationSettings",
    "ServerSettings",
    "Settings",
    "default_data_dir",
    "load_settings",
    "parse_bind",
    "parse_resolver",
    "parse_table",
]
