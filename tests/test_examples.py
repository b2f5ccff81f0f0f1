"""The scripts in examples/ run as documented: each exits 0 and prints its success line.

Every example checks what it shows and, when all is as expected, prints `<name> OK` (e.g.
`demo OK: all 16 cases behaved as expected`): a new script in examples/ is run here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def run_example(script: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    paths = (str(ROOT / "src"), env.get("PYTHONPATH"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_examples_are_found() -> None:
    """The glob finds the documented examples, so the test below cannot pass by running none."""
    assert {"demo.py", "sdk_example.py"} <= {p.name for p in EXAMPLES}


@pytest.mark.timeout(90)  # above the subprocess's own 60 s, so a hang reports its output
@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_and_passes_its_checks(script: Path) -> None:
    """The script exits 0 and prints `<name> OK`, so every case it asserts behaved."""
    try:
        result = run_example(script)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{script.name} ran over 60 s; stdout so far:\n{exc.stdout!r}")
    output = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, output
    assert f"{script.stem} OK" in result.stdout, output
