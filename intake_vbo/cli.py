"""The ``intake-vbo`` console script.

Every failure a user can cause prints one line, ``intake-vbo: error: <what and where>``,
and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .base.errors import VboError
from .transfer.parts import CONNECTIONS, THRESHOLD


def cmd_build(args) -> int:
    from .catalog.build import build

    report = build(args.out, args.bucket_url, args.versions, args.cache_dir)
    if report.built:
        print(f"built {', '.join(report.built)} into {args.out}")
    if report.unchanged:
        print(f"unchanged: {', '.join(report.unchanged)}")
    print(f"done in {report.seconds:.2f} s")
    return 0


def cmd_versions(args) -> int:
    from .catalog.origin import bucket_url, list_manifests

    bucket = bucket_url(args.bucket_url)
    listing = list_manifests(bucket)
    if not listing:
        raise VboError(f"{bucket}: no manifests found")
    latest = list(listing)[-1]
    for version in listing:
        print(version + ("  (latest)" if version == latest else ""))
    return 0


def cmd_diff(args) -> int:
    from .catalog.index import diff, diff_report

    objects, tables = diff(Path(args.catalog), args.a, args.b)
    print(diff_report(args.a, args.b, objects, tables, keys=args.keys))
    return 0


def fetch_plan(args):
    """The cache and the ``(label, url, file_hash)`` items that ``fetch`` downloads."""
    from .drivers.resolve import catalog_version

    version = catalog_version(args.catalog, args.version)
    items = version.items(args.ophys_experiment, args.behavior_session, args.all)
    if not items:
        raise VboError("nothing to fetch: give --ophys-experiment, --behavior-session or --all")
    return version.cache(), items


def cmd_fetch(args) -> int:
    from .catalog.origin import copy_root
    from .drivers.resolve import catalog_version
    from .transfer.cache import fetch_many

    version = catalog_version(args.catalog, args.version)
    if copy_root(version.bucket()) is not None:
        return _in_place(version.in_place(args.ophys_experiment, args.behavior_session, args.all))
    cache, items = fetch_plan(args)
    report = fetch_many(cache, items, workers=args.workers, connections=args.connections)
    _summary(report)
    return 2 if report.failed else 0


def _in_place(found: list) -> int:
    """What ``fetch`` says of a catalog read from a copy: its files are used in place."""
    if not found:
        raise VboError("nothing to fetch: give --ophys-experiment, --behavior-session or --all")
    failed = [(label, why) for label, path, why in found if path is None]
    for label, why in failed:
        print(f"failed: {label}: {why}", file=sys.stderr)
    print(f"in place {len(found) - len(failed)} (read from the copy, nothing copied), "
          f"failed {len(failed)}")  # fmt: skip
    return 2 if failed else 0


def _summary(report) -> None:
    for label, error in report.failed:
        print(f"failed: {label}: {error}", file=sys.stderr)
    print(
        f"fetched {len(report.fetched)}, already cached {len(report.cached)}, "
        f"failed {len(report.failed)} ({report.bytes_transferred / 1e6:.1f} MB transferred)"
    )


def cmd_verify(args) -> int:
    from .drivers.resolve import catalog_files, copy_files

    on_copy = copy_files(args.catalog)
    status = 0 if on_copy is None else _verify_copy(*on_copy, repair=args.repair)
    files = catalog_files(args.catalog)
    urls = files.urls() if on_copy is None else {}  # a copy's files are never fetched
    return max(status, _verify_cache(files, urls, args.repair))


def _verify_copy(root, expected: dict, repair: bool) -> int:
    """Hash every file of the copy the catalog reads in place; report, never touch it."""
    from .transfer.inplace import verify_copy

    report = verify_copy(expected)
    for label, paths in (("damaged", report.damaged), ("missing", report.missing)):
        for path in paths:
            print(f"{label} on the copy: {path}")
    print(
        f"copy {root}: {len(report.ok)} ok, {len(report.damaged)} damaged, "
        f"{len(report.missing)} missing (the copy is read-only to us: never changed"
        + ("; --repair leaves it alone)" if repair else ")")
    )
    return 2 if report.damaged else 0


def _verify_cache(files, urls: dict, repair: bool) -> int:
    from .transfer.upkeep import verify

    report = verify(files.cache(), urls, repair=repair)
    for label, paths in (("damaged", report.damaged), ("foreign", report.foreign)):
        for path in paths:
            print(f"{label}: {path}")
    for path in report.repaired:
        print(f"repaired: {path}")
    for path, error in report.failed:
        print(f"not repaired: {path}: {error}", file=sys.stderr)
    print(
        f"{len(report.ok)} ok, {len(report.damaged)} damaged, {len(report.foreign)} foreign "
        f"(left alone), {len(report.repaired)} repaired"
    )
    # Foreign files are reported, not judged: only damage left in place fails the check.
    return 2 if len(report.damaged) > len(report.repaired) else 0


def cmd_adopt(args) -> int:
    from .drivers.resolve import catalog_files
    from .transfer.upkeep import adopt

    files = catalog_files(args.catalog)
    report = adopt(files.cache(), args.path, files.suffixes())
    print(
        f"adopted {len(report.adopted)}, already cached {len(report.present)}, "
        f"not in the catalog {len(report.unknown)}"
    )
    return 0


def cmd_demo(args) -> int:
    try:  # the sample release needs the demo extra; the product never imports it
        from .sample.demo import run_demo
    except ModuleNotFoundError as exc:
        raise VboError(
            f"the demo needs {exc.name}, which is not installed: pip install 'intake-vbo[demo]'"
        ) from None
    return run_demo(Path(args.workdir), scale=args.scale)


def parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    p = argparse.ArgumentParser(
        prog="intake-vbo",
        description="Intake catalogs, a DuckDB index and a verified cache for VBO.",
    )
    sub = p.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build or incrementally update a catalog")
    b.add_argument("--out", required=True, help="catalog directory")
    b.add_argument("--bucket-url", help="bucket or mirror URL (default: VBO_BUCKET_URL or AWS)")
    b.add_argument("--versions", default="all", help="all, latest or X.Y.Z,... (default all)")
    b.add_argument("--cache-dir", help="download cache recorded for the catalog's NWB sources")
    b.set_defaults(func=cmd_build)

    v = sub.add_parser("versions", help="list released manifest versions")
    v.add_argument("--bucket-url", help="bucket or mirror URL (default: VBO_BUCKET_URL or AWS)")
    v.set_defaults(func=cmd_versions)

    d = sub.add_parser("diff", help="what changed between two built versions")
    d.add_argument("a", help="the older version, X.Y.Z")
    d.add_argument("b", help="the newer version, X.Y.Z")
    d.add_argument("--catalog", required=True, help="catalog directory (as built with --out)")
    d.add_argument("--keys", action="store_true", help="also list every changed object key")
    d.set_defaults(func=cmd_diff)

    f = sub.add_parser("fetch", help="download NWB files into the cache, verified")
    f.add_argument("--catalog", required=True, help="catalog directory (as built with --out)")
    f.add_argument("--version", required=True, help="X.Y.Z or latest")
    f.add_argument(
        "--ophys-experiment",
        type=int,
        nargs="+",
        default=[],
        metavar="ID",
        help="ophys_experiment_id(s) whose NWB file to fetch",
    )
    f.add_argument(
        "--behavior-session",
        type=int,
        nargs="+",
        default=[],
        metavar="ID",
        help="behavior_session_id(s) whose NWB file to fetch",
    )
    f.add_argument("--all", action="store_true", help="every file of the version")
    f.add_argument("--workers", type=int, default=8, help="files downloaded at once (default 8)")
    f.add_argument(
        "--connections",
        type=int,
        metavar="N",
        help=f"connections per large file, each fetching byte ranges (files over "
        f"{THRESHOLD >> 20} MiB; default {CONNECTIONS}, or VBO_CONNECTIONS; 1: one "
        "connection); all files together use at most max(--workers, N) at once",
    )
    f.set_defaults(func=cmd_fetch)

    r = sub.add_parser("verify", help="re-hash the cache; --repair re-fetches damaged files")
    r.add_argument("--catalog", required=True, help="catalog directory (as built with --out)")
    r.add_argument("--repair", action="store_true", help="delete damaged files and fetch again")
    r.set_defaults(func=cmd_verify)

    a = sub.add_parser("adopt", help="take files of an AllenSDK cache into this cache")
    a.add_argument("path", help="an AllenSDK cache directory")
    a.add_argument("--catalog", required=True, help="catalog directory (as built with --out)")
    a.set_defaults(func=cmd_adopt)

    m = sub.add_parser("demo", help="the whole job offline, on a loopback S3 server")
    m.add_argument("--workdir", default="demo-out", help="where the sample and catalog go")
    m.add_argument("--scale", type=float, default=1.0, help="sample size (1.0: real row counts)")
    m.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the console script; return its exit status."""
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except VboError as exc:
        print(f"intake-vbo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("intake-vbo: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
