#!/usr/bin/env python3
"""Turns a kv-seed folder into the JSON that `wrangler kv bulk put` loads.

kv-seed/servers/{id}.json holds one readable registry entry per server; KV
wants `[{"key": "servers/{id}", "value": "<the entry as a string>"}]`. Every
entry is checked to be JSON here, so a typo fails before it reaches KV.

Usage: kv_bulk.py SEED_DIR > bulk.json
"""
import json
import pathlib
import sys


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    seed = pathlib.Path(sys.argv[1])
    items = []
    for path in sorted(seed.rglob("*.json")):
        key = path.relative_to(seed).with_suffix("").as_posix()
        try:
            value = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            print(f"{path}: not JSON: {e}", file=sys.stderr)
            return 1
        items.append({"key": key, "value": json.dumps(value, separators=(",", ":"))})
    json.dump(items, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
