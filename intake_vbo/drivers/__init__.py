"""The intake drivers: what a catalog's sources read, and how.

``tablesource`` (``vbo_table``: a metadata table from Parquet), ``nwbsource``
(``vbo_nwb``: one NWB file, fetched or streamed), ``filetables`` (``vbo_nwb_tables``:
one table of many files as a dask DataFrame) with ``tasks`` (one file's partition) and
``tablemeta`` (the declared shape of each per-file table); ``resolve`` (catalog, version
and ids to files, URLs and the cache), ``frames`` (Arrow to AllenSDK-shaped pandas) and
``params`` (intake's text parameters as values). Drivers are named by entry point in
the catalog files, never by module path.
"""
