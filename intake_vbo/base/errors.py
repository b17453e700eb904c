"""The one error users see: a single line naming what went wrong and where."""


class VboError(Exception):
    """A user-facing failure: bad input, an unknown version or id, an unreachable server.

    The message is one line naming the thing (file, URL, version, id) and the problem;
    the command line prints it and exits with status 2.
    """

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


def no_catalog(root) -> VboError:
    """The error for a directory that holds no built catalog."""
    return VboError(f"{root}: no catalog here; run `intake-vbo build --out {root}` first")
