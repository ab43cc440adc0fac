"""Checks of a bundle that work from any copy of it, with no network access.

``python -m monai_hsmix.apps.bundle verify [BUNDLE_DIR]``
    validates ``BUNDLE_DIR/configs/metadata.json`` (default: the current folder) with MONAI's
    ``verify_metadata`` against the schema file that this installed ``monai_hsmix`` ships, the one the
    metadata's ``"schema"`` URL names. MONAI's own command needs ``--filepath`` to point at that file; given
    a path that does not exist it creates the path's folders and tries to download the schema.
``python -m monai_hsmix.apps.bundle schema [BUNDLE_DIR]``
    prints the path of that shipped schema file, for MONAI's command::

        python -m monai.bundle verify_metadata --meta_file configs/metadata.json \\
            --filepath "$(python -m monai_hsmix.apps.bundle schema)"

``python -m monai_hsmix.apps.bundle json [BUNDLE_DIR]``
    rewrites ``configs/train.json`` and ``configs/inference.json`` from the YAML configs after an edit:
    ``monai.bundle.load`` reads JSON configs only (without them it returns a state dict, not the network).

A missing or unreadable metadata file, a schema that is not shipped, or metadata that fails the schema ends
the command with its message and exit code 2.
"""

from __future__ import annotations

import argparse
import json
from importlib import resources
from pathlib import Path
from typing import List, Optional, Sequence

SCHEMA_FOLDER = "bundle_schema"
# sha256 of each shipped schema (see bundle_schema/README.md): MONAI checks it before using the file
SCHEMA_SHA256 = {"meta_schema_20240725.json": "d95c74c2915faef04ff6a2d6bd865da922bc8cd5afb4a0719b2dc6e1220528e7"}


__all__ = ["build_parser", "main", "read_metadata", "schema_path", "shipped_schemas", "verify"]


def shipped_schemas() -> List[str]:
    """Names of the bundle metadata schema files shipped in the installed ``monai_hsmix`` package."""
    folder = resources.files("monai_hsmix").joinpath(SCHEMA_FOLDER)
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".json")) if folder.is_dir() else []


def read_metadata(bundle_dir) -> dict:
    """``BUNDLE_DIR/configs/metadata.json`` as a dict; a missing or malformed file raises naming it."""
    meta_file = Path(bundle_dir) / "configs" / "metadata.json"
    if not meta_file.is_file():
        raise FileNotFoundError(
            f"no bundle metadata at {meta_file} (give the bundle's folder, the one holding configs/)"
        )
    try:
        meta = json.loads(meta_file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_file} is not valid JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file}: expected a JSON object, got {type(meta).__name__}")
    return meta


def schema_path(bundle_dir=".") -> Path:
    """The shipped schema file that the bundle's metadata names in its ``"schema"`` URL."""
    meta = read_metadata(bundle_dir)
    url = meta.get("schema")
    if not url:
        raise ValueError(f'{Path(bundle_dir) / "configs" / "metadata.json"} has no "schema" field')
    name = str(url).rstrip("/").rsplit("/", 1)[-1]
    shipped = shipped_schemas()
    if name not in shipped:
        raise ValueError(
            f"the metadata names schema {name!r} ({url}); this monai_hsmix ships {shipped}: "
            "pass a local copy of that schema to MONAI's verify_metadata --filepath"
        )
    path = Path(str(resources.files("monai_hsmix").joinpath(SCHEMA_FOLDER, name)))
    if not path.is_file():  # a zipped install: the schema is not a file MONAI can open
        raise FileNotFoundError(f"schema {name} is inside a packed install at {path}; install monai_hsmix unpacked")
    return path


def verify(bundle_dir=".") -> Path:
    """Validate the bundle's metadata against its shipped schema; returns the schema used."""
    from monai.bundle import verify_metadata

    schema = schema_path(bundle_dir)
    digest = SCHEMA_SHA256.get(schema.name)
    verify_metadata(
        meta_file=str(Path(bundle_dir) / "configs" / "metadata.json"),
        filepath=str(schema),
        hash_val=digest,
        hash_type="sha256" if digest else None,
    )
    return schema


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m monai_hsmix.apps.bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("verify", "validate configs/metadata.json against the shipped schema"),
        ("schema", "print the path of the shipped schema that configs/metadata.json names"),
        ("json", "write configs/train.json and inference.json from the YAML configs"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("bundle_dir", nargs="?", default=".", help="the bundle's folder (default: the current one)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "schema":
            print(schema_path(args.bundle_dir))
        elif args.command == "json":
            from monai_hsmix.bundle.utils import write_json_configs

            for path in write_json_configs(args.bundle_dir):
                print(f"wrote {path}")
        else:
            schema = verify(args.bundle_dir)
            print(f"{Path(args.bundle_dir) / 'configs' / 'metadata.json'}: valid against {schema}")
    except (
        ValueError,
        OSError,
    ) as err:  # a schema violation and a changed schema file (HashCheckError) are ValueErrors
        parser.exit(2, f"{parser.prog} {args.command}: error: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
