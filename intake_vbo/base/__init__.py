"""The base layer: what every other layer may use and nothing here imports from them.

``errors`` (the one user-facing error), ``settings`` (the one reader of ``VBO_*``),
``crash`` (named crash points for tests), ``hashes`` (the BLAKE2b digest rule) and
``fileops`` (file operations with a POSIX fast path and a portable path).
"""

__version__ = "0.1.0"
