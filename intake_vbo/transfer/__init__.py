"""The transfer layer: bytes from a URL to a verified local file or a streamed read.

Lowest first: ``http`` (GETs, retries, backoff), ``download`` (one connection into an
incoming file), ``remote`` (pinned Range reads), ``journal`` and ``parts`` (a download
on several connections: the one place that chooses one or several), ``store`` (the
verified, content-addressed files), ``blocks`` (the block store of streamed reads),
``streamfile`` (a seekable file over a URL), ``cache`` (the store filled on demand),
``opener`` (the one opener of a remote file), ``upkeep`` (verify, adopt).
"""
