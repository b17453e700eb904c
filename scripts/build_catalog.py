#!/usr/bin/env python
"""Build or update a catalog: the same as ``intake-vbo build`` (same options)."""

import sys

from intake_vbo.cli import main

if __name__ == "__main__":
    sys.exit(main(["build", *sys.argv[1:]]))
