"""Which HDF5 datasets a test's code reads: for the tests that say what is read lazily."""

from __future__ import annotations

from intake_vbo.nwb.file import NWBReader


def count_reads(monkeypatch) -> list[str]:
    """Record the HDF5 path of every dataset read from now on."""
    reads: list[str] = []
    real = NWBReader.read

    def read(self, path):
        reads.append(path)
        return real(self, path)

    monkeypatch.setattr(NWBReader, "read", read)
    return reads
