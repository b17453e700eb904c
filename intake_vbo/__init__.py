"""intake-vbo: the Allen Visual Behavior Ophys release as intake catalogs and a DuckDB index.

Importing the package is cheap on purpose: the heavy libraries load in the modules
that need them.
"""

__version__ = "0.1.0"

DEFAULT_BUCKET_URL = "https://visual-behavior-ophys-data.s3.us-west-2.amazonaws.com/"
PROJECT_PREFIX = "visual-behavior-ophys/"
