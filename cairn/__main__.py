"""``python -m cairn db upgrade|current``: store administration without a server."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from cairn.core.errors import CairnError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cairn")
    groups = parser.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="metadata store administration")
    actions = db.add_subparsers(dest="action", required=True)
    for action, text in (
        ("upgrade", "migrate the metadata store to this Cairn's schema"),
        ("current", "print the metadata store's schema revision"),
    ):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("--home", help="embedded store folder (default $CAIRN_HOME or ./.cairn)")
        sub.add_argument("--store", help="database URL (default $CAIRN_STORE_URI)")
    args = parser.parse_args(argv)

    from cairn.core.settings import settings_from
    from cairn.service.admin import schema_revision, upgrade_store

    settings = settings_from(os.environ, home=args.home, store_uri=args.store)
    try:
        if args.action == "upgrade":
            print(f"schema at revision {upgrade_store(settings)}")
        else:
            print(schema_revision(settings) or "no schema")
    except CairnError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
