"""The one opener of a remote file: the verified copy if there is one, else fetched or streamed.

The NWB views (a bare URL), the NWB sources and the per-file table tasks all open a
file through :func:`open_url`, so where a file is read from is decided in one place:

0. a file of a copy of the release on disk (a ``file://`` URL), opened in place and
   checked (:mod:`intake_vbo.transfer.inplace`), never copied;
1. the verified store's copy, when the file's hash is known and the copy is there;
2. otherwise, with ``stream=True``, a :class:`~intake_vbo.transfer.streamfile.StreamFile`
   over pinned Range requests, its blocks kept under the cache root;
3. otherwise the whole file, downloaded into the cache and verified.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..base.errors import VboError
from .blocks import BlockStore
from .cache import Cache, fetch_one, open_cache
from .inplace import is_file_url, open_in_place
from .remote import Remote
from .streamfile import BLOCK, NEAR, StreamFile


def open_url(url: str, file_hash: str | None = None,
             cache: Cache | str | os.PathLike | None = None, *, stream: bool = True,
             block_size: int = BLOCK, near: int = NEAR,
             label: str | None = None) -> Path | StreamFile:  # fmt: skip
    """Where to read the object at ``url`` from: a local path, or a streamed file.

    Parameters
    ----------
    url : str
        ``http(s)://.../key?versionId=...``, or ``file://...`` for a file on a copy.
    file_hash : str, optional
        The file's BLAKE2b (a catalog knows it): the verified copy is then used if
        present, blocks are keyed by it, and a streamed file whose blocks come to
        cover it is verified and promoted into the cache.
    cache : Cache, str or path, optional
        The cache (or its root); default :func:`~intake_vbo.transfer.cache.open_cache`
        (``VBO_CACHE_DIR``, else the user cache directory).
    stream : bool
        Stream by Range requests (True) or download the whole file first (False,
        which needs ``file_hash``).
    block_size, near : int
        The streamed read policy (:class:`~intake_vbo.transfer.streamfile.StreamFile`).
    label : str, optional
        What the file is (``ophys experiment 951980471``): a whole download is then shown
        under a progress bar of that name (:func:`~intake_vbo.transfer.cache.fetch_one`).

    Returns
    -------
    Path or StreamFile
        A verified local file, or a seekable binary file the caller closes.

    Examples
    --------
    >>> source = open_url(url, file_hash, cache)        # doctest: +SKIP
    >>> exp = intake_vbo.open_experiment(source)        # doctest: +SKIP
    """
    if not isinstance(cache, Cache):
        cache = open_cache() if cache is None else Cache(cache)
    if is_file_url(url):
        return open_in_place(url, file_hash, cache.root)
    if file_hash and cache.has(file_hash):
        return cache.path(file_hash)
    if not stream:
        if not file_hash:
            raise VboError(f"{url.split('?', 1)[0]}: downloading whole needs the file's hash")
        return (
            cache.fetch(url, file_hash)
            if label is None
            else fetch_one(cache, label, url, file_hash)
        )
    remote = Remote(url, backoff=cache.backoff)
    return StreamFile(remote, BlockStore(cache.root), file_hash, cache, block_size, near)
