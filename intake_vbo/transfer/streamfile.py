"""A read-only, seekable file over a URL for h5py, its blocks kept on disk.

:class:`StreamFile` is what ``h5py.File`` reads when a file is streamed: blocks of a
fixed size kept in the on-disk block store (:mod:`intake_vbo.transfer.blocks`), fetched
on first use through :class:`~intake_vbo.transfer.remote.Remote` (pinned Range reads)
with a read-ahead suited to HDF5 (see :data:`BLOCK` and :meth:`StreamFile._plan`).
h5py holds one global lock, so reads never overlap: the file is deliberately serial.
A file whose blocks come to cover it is verified and installed in the verified store,
and read from there.
"""

from __future__ import annotations

import io
import os
from collections import OrderedDict

from ..base import fileops
from ..base.crash import crash_point
from .blocks import BlockStore, Entry, entry_key
from .remote import Remote
from .store import Store

# Bytes per block, chosen by measurement (benchmarks/measure_stream_blocks.py): a 478 MB
# experiment written by AllenSDK's writers, one attribute per fresh block store; requests
# / MB received at 64K, 128K, 256K, 512K blocks, a read near the last one (NEAR) reading
# ahead like a sequential one:
#   max_projection          13/1.4   13/2.6   11/3.5   9/4.7 (remfile 0.1.15: 12/2.0)
#   trials                  11/1.1   10/2.1    9/3.3   7/3.7
#   stimulus_presentations  36/4.7   21/5.2   17/6.4  13/6.8
#   dff_traces (84 MB)      48/87    46/90    43/94   37/102
# HDF5 metadata is scattered, so small blocks cost requests and large ones cost bytes
# (4.7 MB at 512K for a 0.26 MB image). 128 KiB keeps the bytes of a first look within
# 1.5x of remfile's and its requests near the 512K count; at 20 ms and 25 MB/s per
# request the four attributes take about the same time at 128K as at 512K.
BLOCK = 128 << 10
# A read starting at most this far after the last one ended continues its read-ahead:
# HDF5 lays a group's metadata and small datasets close together (a table's columns).
NEAR = 2 << 20
MAX_AHEAD = 8 << 20  # read-ahead grows while reads are contiguous, up to this
MAX_REQUEST = 32 << 20  # bytes per request at most (a long read takes several)
MEMORY = 32 << 20  # recently used blocks kept in memory (HDF5 rereads metadata often)


class StreamFile(io.RawIOBase):
    """A read-only, seekable binary file over a URL, its blocks kept in the block store.

    Parameters
    ----------
    remote : Remote
        The object to read.
    blocks : BlockStore
        Where blocks are kept (``<cache root>/blocks``).
    file_hash : str, optional
        The file's BLAKE2b: blocks are keyed by it, and a complete set is verified
        and promoted into the verified cache.
    store : Store, optional
        The verified store to promote into (needed with ``file_hash``).
    block_size, near : int
        Bytes per block (:data:`BLOCK`); how far after the last read a read may start
        and still continue its read-ahead (:data:`NEAR`).

    Attributes
    ----------
    promoted : Path or None
        The verified cache file, once every block arrived and matched ``file_hash``.
    """

    def __init__(self, remote: Remote, blocks: BlockStore, file_hash: str | None = None,
                 store: Store | None = None, block_size: int = BLOCK,
                 near: int = NEAR):  # fmt: skip
        super().__init__()
        self.remote, self.blocks, self.block_size, self.near = remote, blocks, block_size, near
        self.file_hash, self.store, self.promoted = file_hash, store, None
        self._local = None  # the verified cache's copy, once there is one
        self.name = remote.name
        self._pos = self._last_end = self._ahead = 0
        self._memory: OrderedDict[int, bytes] = OrderedDict()
        with fileops.shared(blocks.cache_root):  # a store that is not the group's: say so
            self.entry = self._open_entry()
            self._promote_if_covered()

    def _open_entry(self) -> Entry:
        remote = self.remote
        if self.file_hash or remote.version_id:  # immutable content: its blocks may be reused
            entry = self.blocks.entry(entry_key(remote.path, remote.version_id, self.file_hash))
            meta = entry.meta()
            if meta is not None:
                remote.size = meta["size"]
                if not self.file_hash:  # the same URL's object: pinned to the ETag seen first
                    remote.etag = meta["etag"]
                return entry
        first = self._fetch_plain(0, self.block_size)  # learns size and ETag
        key = entry_key(remote.path, remote.version_id, self.file_hash, remote.etag)
        entry = self.blocks.entry(key)
        entry.save_meta(remote.size, remote.etag)
        entry.write(0, first)
        self._remember(0, first)
        return entry

    def _promote_if_covered(self) -> None:
        """A file whose blocks cover it (a crash came before its promotion) goes in now."""
        if self.file_hash and self.store is not None:
            self._use_local(promote=True)

    def _fetch_plain(self, start: int, stop: int) -> bytes:
        out = bytearray()
        self.remote.get(start, stop, out.extend)
        return bytes(out)

    @property
    def size(self) -> int:
        """The file's size in bytes."""
        return self.remote.size

    # -- the io.RawIOBase interface h5py uses ----------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        view = memoryview(buffer).cast("B")
        start, stop = self._pos, min(self._pos + len(view), self.size)
        if start >= stop:
            return 0
        try:  # h5py reads in many small calls: a try costs them nothing
            self._ensure(start, stop)
            return self._copy(view, start, stop)
        except PermissionError as exc:  # a store that is not the group's: say so
            raise fileops.refusal(self.blocks.cache_root, exc) from exc

    def _copy(self, view: memoryview, start: int, stop: int) -> int:
        """Copy bytes ``[start, stop)`` (fetched already) into ``view``; move past them."""
        if self._local is not None:
            self._local.seek(start)
            written = self._local.readinto(view[: stop - start])
            self._pos = start + written
            return written
        written, offset = 0, start - start % self.block_size
        while offset < stop:
            data = self._block(offset)
            lo, hi = max(start, offset) - offset, min(stop, offset + len(data)) - offset
            view[written : written + hi - lo] = data[lo:hi]
            written += hi - lo
            offset += self.block_size
        self._pos = stop
        return written

    def close(self) -> None:
        self._memory.clear()
        if self._local is not None:
            self._local.close()
        super().close()

    # -- blocks -------------------------------------------------------------------------

    def _length(self, offset: int) -> int:
        return min(self.block_size, self.size - offset)

    def _present(self, offset: int) -> bool:
        return offset in self._memory or self.entry.has(offset, self._length(offset))

    def _block(self, offset: int) -> bytes:
        """One block: from memory, else the store, else (evicted meanwhile) the network."""
        data = self._memory.get(offset)
        if data is None:
            data = self.entry.read(offset, self._length(offset))
            if data is None:
                self._fetch(offset, offset + self._length(offset))
                data = self._memory[offset]
            self._remember(offset, data)
        self._memory.move_to_end(offset)
        return data

    def _remember(self, offset: int, data: bytes) -> None:
        self._memory[offset] = data
        while len(self._memory) * self.block_size > MEMORY and len(self._memory) > 1:
            self._memory.popitem(last=False)

    def _ensure(self, start: int, stop: int) -> None:
        """Fetch the missing blocks under ``[start, stop)`` plus read-ahead, coalesced.

        With the file's hash known, a file that reached the verified cache (here or
        in another process) is read from there instead.
        """
        if self._local is not None:
            return
        plan = self._plan(start, stop)
        if plan and self._use_local():
            return
        for lo, hi in plan:
            self._fetch(lo, hi)
        self._last_end = stop
        if plan and self._use_local(promote=True):
            self._memory.clear()

    def _use_local(self, promote: bool = False) -> bool:
        """Switch to the verified cache's copy if there is one (promoting first if asked)."""
        if not self.file_hash or self.store is None:
            return False
        entry, size, bs = self.entry, self.size, self.block_size
        if (
            promote
            and entry.covered(size, bs)
            and entry.promote(self.store, self.file_hash, size, bs, self.name)
        ):
            self.promoted = self.store.path(self.file_hash)
        if not self.store.has(self.file_hash):
            return False
        self._local = open(self.store.path(self.file_hash), "rb")  # noqa: SIM115 (closed in close)
        return True

    def _plan(self, start: int, stop: int) -> list[tuple[int, int]]:
        """The byte ranges to request: runs of missing blocks, the last one read ahead.

        HDF5 reads its metadata in small scattered pieces, then datasets in large or
        sequential ones. So a read far from the last one fetches only its own blocks,
        and each read that continues where the previous one ended, or starts a little
        after it (NEAR), doubles the read-ahead (one block, two, four, ... up to
        MAX_AHEAD); a jump resets it.
        Consecutive missing blocks go in one request (up to MAX_REQUEST).
        """
        bs = self.block_size
        near = 0 <= start - self._last_end <= self.near
        self._ahead = min(max(bs, 2 * self._ahead), MAX_AHEAD) if near else 0
        first, last = start - start % bs, (stop - 1) - (stop - 1) % bs
        missing = [o for o in range(first, last + 1, bs) if not self._present(o)]
        if missing:
            self.entry.rescan()  # another process may have fetched them meanwhile
            missing = [o for o in missing if not self._present(o)]
        runs: list[list[int]] = []
        for offset in missing:
            if runs and runs[-1][1] == offset and offset + bs - runs[-1][0] <= MAX_REQUEST:
                runs[-1][1] = offset + bs
            else:
                runs.append([offset, offset + bs])
        if runs and runs[-1][1] == last + bs:
            end = runs[-1][1]
            limit = min(self.size, end + self._ahead, runs[-1][0] + MAX_REQUEST)
            while end < limit and not self._present(end):
                end += bs
            runs[-1][1] = end
        return [(lo, min(hi, self.size)) for lo, hi in runs]

    def _fetch(self, start: int, stop: int) -> None:
        """One request (retried as needed) for the blocks ``[start, stop)``, stored as they come."""
        pending = bytearray()
        offset = start

        def sink(chunk: bytes) -> None:
            nonlocal offset
            pending.extend(chunk)
            while len(pending) >= self._length(offset) > 0:
                n = self._length(offset)
                data = bytes(pending[:n])
                del pending[:n]
                self.entry.write(offset, data)
                self._remember(offset, data)
                offset += n
                crash_point("ranges:mid-response")

        self.remote.get(start, stop, sink)
