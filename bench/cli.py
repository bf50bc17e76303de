"""CLI start-up and `certfleet inventory list` over 10,000 certificates, beside a bare interpreter.

Each command runs as a fresh process (as a user's shell runs it), REPEAT times after one
warm-up run, the way hyperfine does; the best and the median wall-clock times, and the median
CPU time (user + system, steadier on a shared machine), are printed beside the same figures
for ``python -c pass`` with the same interpreter, with the ratios of the medians; "imports"
is the median over three ``python -X importtime`` runs of the summed top-level imports. The
inventory is a real data directory (``certfleet init``) whose SQLite database is then
bulk-loaded with synthetic certificate rows straight in SQL (tests/inventory/synthetic.py,
shared with the query-plan tests and bench/dashboard.py). Bytecode is cached, as for an
installed certfleet (pip compiles it at install), in a temporary PYTHONPYCACHEPREFIX that the
warm-up run writes. The rows "the same through typer" run ``version`` and ``--help`` through
the typer application, which is how both were answered before they took the fast path.

    .venv/bin/python bench/cli.py                  # 10,000 certificates, 20 runs each
    .venv/bin/python bench/cli.py --rows 10000 --repeat 30
    .venv/bin/python bench/cli.py --startup-only   # version and --help only, no inventory

The load average is printed before and after the runs: ratios measured while other work
shares the cores are not the quiet figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

# The synthetic inventory loader is shared with the query-plan tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.inventory.synthetic import load_sqlite

PYTHON = sys.executable
_THROUGH_TYPER = "import sys; from certfleet.cli._app import run_typer; sys.exit(run_typer(sys.argv[1:]))"
# The console script pip installed beside this interpreter: what a user's shell runs.
CERTFLEET = [PYTHON, str(Path(sys.executable).with_name("certfleet"))]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: Sequence[str], env: dict[str, str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of ``repeat`` runs of ``argv`` (after one
    warm-up run), output discarded; a failing run aborts the benchmark rather than timing an
    error message. CPU time is the steadier figure on a machine shared with other work."""
    walls: list[float] = []
    cpus: list[float] = []
    for run in range(repeat + 1):
        cpu = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        elapsed = time.perf_counter() - start
        if done.returncode != 0:
            sys.exit(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-400:]}")
        if run:
            walls.append(elapsed)
            cpus.append(_children_cpu() - cpu)
    return walls, cpus


_IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+(\d+) \| (\S.*)$")


def import_seconds(argv: Sequence[str], env: dict[str, str]) -> float:
    """The sum of the top-level imports' cumulative times of one run under ``python -X
    importtime`` (what the command spends importing; the interpreter's own start-up
    imports included, as for the baseline)."""
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    micros = sum(int(m.group(1)) for m in map(_IMPORT_LINE.match, done.stderr.splitlines()) if m)
    return micros / 1e6


def build_inventory(data_dir: Path, rows: int, env: dict[str, str]) -> None:
    """A real data directory (CA, passphrase, migrated database) plus ``rows`` synthetic
    certificates."""
    subprocess.run(
        [*CERTFLEET, "init", "--data-dir", str(data_dir)], env=env, check=True, capture_output=True
    )
    load_sqlite(data_dir / "certfleet.db", rows, dt.datetime.now(dt.UTC).replace(tzinfo=None))


def load_average() -> str:
    """The 1, 5 and 15 minute load averages (Linux), to read the figures by."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="certificates in the inventory")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per command")
    parser.add_argument(
        "--startup-only", action="store_true", help="time version and --help only (no inventory)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="certfleet-bench-cli-") as tmp:
        data_dir = Path(tmp) / "data"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("CERTFLEET_") and k != "PYTHONDONTWRITEBYTECODE"
        }
        # As an installed certfleet runs: its modules' bytecode cached (pip compiles it at
        # install). The warm-up run writes it, here outside the source tree, for every
        # command and the baseline alike.
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        cases = [
            ("python -c pass (baseline)", [PYTHON, "-c", "pass"]),
            ("certfleet version", [*CERTFLEET, "version"]),
            ("certfleet --help", [*CERTFLEET, "--help"]),
            # What the two cost before they were answered without typer (commit b016f16):
            # the same argument lists through the typer application.
            ("  the same through typer: version", [PYTHON, "-c", _THROUGH_TYPER, "version"]),
            ("  the same through typer: --help", [PYTHON, "-c", _THROUGH_TYPER, "--help"]),
        ]
        if not args.startup_only:
            started = time.perf_counter()
            build_inventory(data_dir, args.rows, env)
            built = time.perf_counter() - started
            print(f"inventory: {args.rows:,} certificates in {data_dir} (built in {built:.1f} s)")
            where = ["--data-dir", str(data_dir)]
            cases += [
                (f"certfleet inventory list ({args.rows:,})", [*CERTFLEET, "inventory", "list", *where]),
                (
                    f"... --format json ({args.rows:,})",
                    [*CERTFLEET, "inventory", "list", "--format", "json", *where],
                ),
            ]
        print(f"load average before: {load_average()}; bytecode cached in {env['PYTHONPYCACHEPREFIX']}")
        print(f"{args.repeat} runs each after one warm-up; seconds (ratios: medians against the baseline)")
        print(
            f"{'command':42} {'best':>7} {'median':>7} {'vs bare':>8} {'cpu med':>8} {'vs bare':>8}"
            f" {'imports':>8}"
        )
        baseline = cpu_baseline = 0.0
        for name, argv in cases:
            walls, cpus = timed(argv, env, args.repeat)
            median, cpu = statistics.median(walls), statistics.median(cpus)
            baseline, cpu_baseline = baseline or median, cpu_baseline or cpu or 0.001
            imports = statistics.median(import_seconds(argv, env) for _ in range(3))
            print(
                f"{name:42} {min(walls):7.3f} {median:7.3f} {median / baseline:7.1f}x"
                f" {cpu:8.3f} {cpu / cpu_baseline:7.1f}x {imports:8.3f}"
            )
        print(f"load average after: {load_average()}")
        print("issue 11 target: certfleet version and --help at most 8x the baseline")


if __name__ == "__main__":
    main()
