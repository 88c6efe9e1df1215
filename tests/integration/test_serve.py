"""`jobledger serve` as an operator runs it: a process that stops cleanly when told to, with
nothing left running."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from infra.embedded_nats import free_port
from infra.settings import Settings
from infra.users import Users


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_stops_promptly_and_cleanly_with_a_live_stream_open(
    tmp_path: Path, stop: signal.Signals
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "JOBLEDGER_DATA_DIR": str(tmp_path),
        "JOBLEDGER_API_PORT": str(port),
        "JOBLEDGER_NATS_URL": "",
    }
    jobledger = Path(sys.executable).with_name("jobledger")
    serve = subprocess.Popen(
        [jobledger, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{base}/api/v2/jobs/", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "serve did not start"
                time.sleep(0.1)
        token = Users(Settings(data_dir=tmp_path).users_path).operator_token()
        headers = {"Authorization": f"Token {token}"}
        with httpx.stream("GET", f"{base}/api/v2/events/", headers=headers, timeout=30) as live:
            assert live.status_code == 200
            stopping = time.monotonic()
            serve.send_signal(stop)
            assert list(live.iter_lines()) == []  # the stream ends; it is not cut off
            assert serve.wait(timeout=15) == 0
            assert time.monotonic() - stopping < 10
            assert serve.stderr is not None
            logged = serve.stderr.read().decode()
            assert "Traceback" not in logged, logged
    finally:
        serve.kill()
        serve.wait()
    left = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, check=False)
    assert left.stdout == b"", "the embedded nats-server outlived serve"
