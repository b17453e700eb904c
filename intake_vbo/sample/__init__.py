"""The sample release: a generated Visual Behavior Ophys release and its loopback S3 server.

For the demo, the tests and the benchmarks only; the product never imports it. It needs
the ``demo`` extra (moto, boto3).

Modules: ``model`` (mice, sessions, experiments and how versions differ), ``tables``
(the metadata CSVs), ``nwbwrite`` (NWB files from templates; ``extensions``, ``session``,
``values``, ``nwbtemplate``, ``nwbophys`` behind it), ``release`` (a release on disk),
``s3`` (publishing it on moto's server on loopback) and ``demo`` (``intake-vbo demo``).
"""
