"""Where the test data of ../shared lies: beside the checkout, never copied into it."""

from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIXTURES = SHARED / "nwb-fixtures"  # NWB files in the exact released layout
REAL_TABLES = SHARED / "real-tables"  # the release's metadata CSVs
