"""Import time of `httpx_resilience` (httpx included) against `import httpx`, in fresh
interpreters."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import Column, Scale, Table, iqr

import httpx_resilience

__all__ = ["import_section"]

MODULES = ("httpx", "httpx_resilience")
_TIMER = (
    "import time; start = time.perf_counter_ns(); import {module}; "
    "print(time.perf_counter_ns() - start)"
)


def _environment(cache: str) -> dict[str, str]:
    env = dict(os.environ)
    # Whatever this process imports httpx_resilience from (an install or PYTHONPATH=src), the
    # children import the same.
    root = str(Path(httpx_resilience.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # Measured from bytecode, as an installed package is: without a cache (some environments
    # set PYTHONDONTWRITEBYTECODE) every import would time the compiler. The cache goes to a
    # directory of our own, for httpx and httpx_resilience alike, never into the source tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = cache
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, check=True
    )


def _import_ms(module: str, env: dict[str, str]) -> float:
    return int(_run(["-c", _TIMER.format(module=module)], env).stdout.strip()) / 1e6


def _importtime(module: str, env: dict[str, str]) -> dict[str, int]:
    """`-X importtime`'s self time in µs of every module a fresh `import module` loads."""
    stderr = _run(["-X", "importtime", "-c", f"import {module}"], env).stderr
    times: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = line.removeprefix("import time:").split("|")
        times[name.strip()] = int(self_us)
    return times


def import_section(scale: Scale) -> list[Table]:
    """Median import time of each module over interleaved fresh interpreters."""
    with tempfile.TemporaryDirectory(prefix="bench-pycache-") as cache:
        env = _environment(cache)
        for module in MODULES:
            _import_ms(module, env)  # writes the bytecode cache
        samples: dict[str, list[float]] = {m: [] for m in MODULES}
        for index in range(scale.import_runs):
            # Alternate which goes first, so neither always meets the warmer file cache.
            for module in MODULES if index % 2 == 0 else MODULES[::-1]:
                samples[module].append(_import_ms(module, env))
        base = _importtime("httpx", env)
        ours = _importtime("httpx_resilience", env)

    ratios = [r / h for r, h in zip(samples["httpx_resilience"], samples["httpx"], strict=True)]
    ratio = statistics.median(ratios)
    extra = sorted(
        ((name, us) for name, us in ours.items() if name not in base),
        key=lambda item: item[1],
        reverse=True,
    )
    heaviest = ", ".join(f"`{name}` {us / 1000:.1f} ms" for name, us in extra[:8])
    records: list[dict[str, Any]] = []
    for module in MODULES:
        mine = module == "httpx_resilience"
        records.append(
            {
                "statement": f"import {module}",
                "median": statistics.median(samples[module]),
                "iqr": iqr(samples[module]),
                "ratio": ratio if mine else 1.0,
                "target": "≤ 2 × import httpx" if mine else "",
                "result": ratio <= 2.0 if mine else None,
                "samples": samples[module],
            }
        )
    table = Table(
        "Import time",
        records=records,
        columns=(
            Column("statement", "statement"),
            Column("median ms", "median", "{:.1f}"),
            Column("IQR", "iqr", "{:.1f}"),
            Column("× import httpx", "ratio", "{:.2f}"),
            Column("target", "target"),
            Column("result", "result"),
        ),
        note=(
            f"`time.perf_counter_ns()` around the import in {scale.import_runs} fresh "
            "interpreters each, alternating, bytecode cached; `import httpx_resilience` "
            "includes httpx. The ratio is the median of the paired per-run ratios. Modules it "
            f"loads beyond httpx's, by `-X importtime` self time: {heaviest or 'none'}."
        ),
    )
    return [table]
