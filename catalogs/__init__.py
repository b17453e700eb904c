"""Catalog templates, installed as ``intake_vbo.catalogs`` (see catalogs/README.md)."""
