"""A data directory whose ``certfleet serve`` runs in one process."""

from __future__ import annotations

from pathlib import Path

__all__ = ["one_worker"]


def one_worker(data_dir: Path) -> Path:
    """``data_dir`` made (0700) with ``[server] workers = 1`` in its config.toml, for servers
    started without a ``--workers`` flag: ``serve`` then serves in its own process instead of
    starting a worker interpreter per core. For suites that do not test workers
    (test_serve_workers.py, test_est_clients.py and the SCEP server of scep_serve.py do)."""
    data_dir.mkdir(mode=0o700)
    (data_dir / "config.toml").write_text("[server]\nworkers = 1\n")
    return data_dir
