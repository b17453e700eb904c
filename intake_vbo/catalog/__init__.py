"""The catalog build: the release's manifests and metadata CSVs into Parquet, DuckDB and YAML.

Lowest first: ``release`` (the bucket's layout, listing and fetches), ``manifest``
(validation), ``schema`` (table names and types), ``tables`` (CSV to Arrow), ``index``
(reading the index: partitions, ``vbo.duckdb``, diffs), ``indexwrite`` (writing it),
``record`` (the settings a build records), ``yamls`` (the intake catalog files) and
``build`` (the pipeline). The drivers read what this layer writes through ``index`` and
``record``, never the writers.
"""
