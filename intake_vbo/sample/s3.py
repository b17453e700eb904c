"""Serve a sample release on a real S3-compatible server on loopback (moto's server mode).

The server speaks the S3 REST protocol over plain HTTP on ``127.0.0.1``; the bucket
is versioned and readable anonymously, so the package under test fetches
``<bucket URL><key>?versionId=<id>`` exactly as it does from the public bucket.
Each server runs in a child process of its own (its own buckets; its own core), or,
with ``in_process=True``, in a thread of this one, where all servers share moto's
buckets. Within one server, tests that need isolation publish into their own buckets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

from ..catalog.release import (
    BUCKET,
    DEFAULT_BUCKET_URL,
    MANIFEST_PREFIX,
    REGION,
    manifest_key,
)
from .release import (
    SAMPLE_VERSIONS,
    generate_release,
    generated_versions,
    load_layout,
    manifest_json,
    object_path,
)

try:  # moto >= 5.2.5: its server keeps underscores in header names
    from moto.moto_server.werkzeug_app import MotoRequestHandler
except ImportError:  # older moto serves with werkzeug's own handler (None: the default)
    MotoRequestHandler = None

_WORKERS = 8


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, remembering which backend serves a host.

    moto lists its package directory on every request to recognise hosts: about
    3 ms a request, more than S3's own work. The answer never changes, so keep it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._backends: dict = {}

    def get_backend_for_host(self, host):
        if host not in self._backends:
            self._backends[host] = super().get_backend_for_host(host)
        return self._backends[host]


class LoopbackServer(ThreadedMotoServer):
    """A ThreadedMotoServer with the faster dispatcher."""

    def _server_entry(self) -> None:  # moto 5's own, with _Dispatcher for its dispatcher
        self._server = make_server(
            self._ip_address, self._port, _Dispatcher(create_backend_app), True,
            request_handler=MotoRequestHandler,
        )  # fmt: skip
        self._server_ready_event.set()
        self._server.serve_forever()


class ServerProcess:
    """A :class:`LoopbackServer` in a child process, stopped by :meth:`stop`.

    Its own process keeps moto's state apart from any other server's and lets the
    server and its clients use separate cores instead of sharing one interpreter
    lock: publishing and fetching run about twice as fast. The child exits when its
    stdin closes, so it never outlives the process that started it.
    """

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "intake_vbo.sample.s3"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True,
        )  # fmt: skip
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"loopback S3 server did not start (said {line!r})")
        self.endpoint_url = line

    def stop(self) -> None:
        """Stop the server and wait for its process to end."""
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process.stdout.close()


def start_server(in_process: bool = False) -> tuple[ThreadedMotoServer | ServerProcess, str]:
    """Start an S3 server on a free loopback port.

    Parameters
    ----------
    in_process : bool
        Run the ThreadedMotoServer in a thread of this process instead of a child
        process (slower: it shares this interpreter's lock; and every in-process
        server shares moto's buckets).

    Returns
    -------
    server, endpoint_url
        Call ``server.stop()`` when done; ``endpoint_url`` is ``http://127.0.0.1:PORT``.
    """
    if not in_process:
        server = ServerProcess()
        return server, server.endpoint_url
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    server = LoopbackServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def s3_client(endpoint_url: str):
    """A boto3 S3 client for the loopback server (dummy credentials, path-style)."""
    import boto3
    from botocore.config import Config

    # Loopback needs no extra checksums; they cost time on every upload. botocore before
    # 1.36 has no such options and computes none of them anyway.
    checksums = {"request_checksum_calculation": "when_required",
                 "response_checksum_validation": "when_required"}  # fmt: skip
    config = Config(
        max_pool_connections=_WORKERS,
        s3={"addressing_style": "path"},
        retries={"max_attempts": 3, "mode": "standard"},
        **{k: v for k, v in checksums.items() if k in Config.OPTION_DEFAULTS},
    )
    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name=REGION, config=config,
        aws_access_key_id="loopback", aws_secret_access_key="loopback",
    )  # fmt: skip


def publish(release: Path, endpoint_url: str, versions=None, bucket: str = BUCKET) -> str:
    """Upload generated versions and their manifests to the server, in version order.

    Objects whose bytes a published manifest already lists are not uploaded again,
    so unchanged files keep their S3 version id and changed ones get a new one.
    Publishing again with the same or further versions changes nothing published.

    Parameters
    ----------
    release : Path
        A directory written by :func:`intake_vbo.sample.generate_release`.
    endpoint_url : str
        ``http://127.0.0.1:PORT`` as :func:`start_server` returns it.
    versions : sequence of str, optional
        Versions to publish (default: every generated version).
    bucket : str
        Bucket name; created, versioned and made anonymously readable if missing.

    Returns
    -------
    str
        The path-style bucket URL ``http://127.0.0.1:PORT/<bucket>/``.
    """
    release = Path(release)
    order = generated_versions(release)
    missing = set(versions or ()) - set(order)
    if missing:
        raise ValueError(f"{release} has no version {', '.join(sorted(missing))}")
    client = s3_client(endpoint_url)
    create_bucket(endpoint_url, bucket)
    objects, manifests = _published(client, bucket)
    for version in sorted(order if versions is None else versions, key=order.index):
        layout = load_layout(release, version)
        version_ids = _upload_all(client, bucket, release, layout, objects)
        manifest = manifest_json(layout, version_ids)
        key = manifest_key(version)
        if manifests.get(key, ("", b""))[1] != manifest:  # the latest upload is what is read
            manifests[key] = (_put(client, bucket, key, manifest), manifest)
    return f"{endpoint_url}/{bucket}/"


def put_object(endpoint_url: str, key: str, body: bytes, bucket: str = BUCKET) -> str:
    """Upload ``body`` under ``key`` (e.g. a broken manifest for a bad-input test).

    Returns
    -------
    str
        The S3 version id of the new upload.
    """
    return _put(s3_client(endpoint_url), bucket, key, body)


@dataclass
class Served:
    """A sample release being served: where to point the package under test."""

    bucket_url: str
    endpoint_url: str
    release: Path
    server: ThreadedMotoServer | ServerProcess


@contextmanager
def serve_sample(
    workdir: Path, versions=SAMPLE_VERSIONS, scale: float = 1.0, seed: int = 0, bucket: str = BUCKET
) -> Iterator[Served]:
    """Generate (or reuse) a sample release in ``workdir``, serve and publish it.

    Yields
    ------
    Served
        ``.bucket_url``, ``.endpoint_url``, ``.release``; the server stops on exit.
    """
    release = generate_release(Path(workdir) / f"release-s{seed}-x{scale:g}", versions, scale, seed)
    server, endpoint_url = start_server()
    try:
        bucket_url = publish(release, endpoint_url, bucket=bucket)
        yield Served(bucket_url, endpoint_url, release, server)
    finally:
        server.stop()


def create_bucket(endpoint_url: str, bucket: str = BUCKET) -> str:
    """Create ``bucket`` if missing, versioned and anonymously readable; return its URL.

    Without the bucket policy moto, like S3, refuses anonymous reads (403).
    """
    client = s3_client(endpoint_url)
    try:
        client.head_bucket(Bucket=bucket)
    except client.exceptions.ClientError:
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    public = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AnonymousRead",
                "Effect": "Allow",
                "Principal": "*",
                # moto checks "s3:<Method>Object", so HEAD needs s3:HeadObject (no such
                # action on AWS, where GetObject covers HEAD).
                "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:HeadObject"],
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
            {
                "Sid": "AnonymousList",
                "Effect": "Allow",
                "Principal": "*",
                "Action": ["s3:ListBucket", "s3:ListBucketVersions"],
                "Resource": f"arn:aws:s3:::{bucket}",
            },
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(public))
    return f"{endpoint_url}/{bucket}/"


def _published(client, bucket: str) -> tuple[dict, dict]:
    """What earlier publishing left in the bucket, read from its manifests.

    Returns
    -------
    objects, manifests
        ``objects``: key -> {blake2b: version id} of every object a manifest lists;
        ``manifests``: manifest key -> (version id, bytes) of its latest upload.
    """
    objects: dict[str, dict[str, str]] = {}
    manifests: dict[str, tuple[str, bytes]] = {}
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=MANIFEST_PREFIX)
    keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
    for key in keys:
        response = client.get_object(Bucket=bucket, Key=key)
        body = response["Body"].read()
        manifests[key] = (response["VersionId"], body)
        try:
            doc = json.loads(body)
            entries = [*doc["metadata_files"].values(), *doc["data_files"].values()]
            for e in entries:
                found = objects.setdefault(e["url"].removeprefix(DEFAULT_BUCKET_URL), {})
                found[e["file_hash"]] = e["version_id"]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue  # a broken manifest a test uploaded: it vouches for nothing
    return objects, manifests


def _upload_all(client, bucket: str, release: Path, layout: dict, objects: dict) -> dict[str, str]:
    """Upload the objects of one version that the bucket lacks; return key -> version id.

    An object whose bytes a published manifest already lists keeps that version id,
    so unchanged files share version ids across versions and publishing twice
    uploads nothing.
    """

    def one(item: tuple[str, dict]) -> tuple[str, str]:
        key, entry = item
        digest = entry["blake2b"]
        known = objects.get(key, {}).get(digest)
        if known:
            return key, known
        body = object_path(release, digest).read_bytes()
        return key, _put(client, bucket, key, body, digest)

    with ThreadPoolExecutor(_WORKERS) as pool:
        version_ids = dict(pool.map(one, layout["objects"].items()))
    for key, version_id in version_ids.items():
        objects.setdefault(key, {})[layout["objects"][key]["blake2b"]] = version_id
    return version_ids


def _put(client, bucket: str, key: str, body: bytes, digest: str | None = None) -> str:
    digest = digest or hashlib.blake2b(body).hexdigest()
    response = client.put_object(Bucket=bucket, Key=key, Body=body, Metadata={"blake2b": digest})
    return response["VersionId"]


def _serve_until_stdin_closes() -> None:
    """The child of :class:`ServerProcess`: serve, print the endpoint, stop on stdin EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    server, endpoint_url = start_server(in_process=True)
    print(endpoint_url, flush=True)
    sys.stdin.read()
    server.stop()


if __name__ == "__main__":
    _serve_until_stdin_closes()
