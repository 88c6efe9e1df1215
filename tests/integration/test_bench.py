"""The benchmarks still run against the code as it is (their figures are read by hand)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[2] / "bench"


@pytest.mark.parametrize(
    ("script", "arguments", "rows"),
    [
        (
            "e2e.py",
            ["--count", "20"],
            ["raw JetStream, 500 in flight", "jobledger, 500 in flight", "jobledger, 1 in flight"],
        ),
        ("snapshots.py", ["--events", "150"], ["none (baseline)", "snapshots"]),
    ],
)
def test_a_benchmark_prints_its_table(script: str, arguments: list[str], rows: list[str]) -> None:
    ran = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert all(row in ran.stdout for row in rows), ran.stdout
