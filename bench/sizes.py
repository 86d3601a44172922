#!/usr/bin/env python3
"""Size of a wasm build per crate: each function's code (and, for data, the
whole section) attributed to the crate its name starts with, from the wasm
`name` section. Works on a core module and on a component (its core modules).

Usage: bench/sizes.py FILE.wasm [--symbols MAP] [--top N] [--json]

Needs the function names: the Workers build moves them out of the wasm into
build/index_bg.symbols (pass it with --symbols); the Spin profile strips
them, so `make bench` measures a `spin-names` build (the same code, names
kept) for this breakdown. Generic functions are named
after the crate that defines them, so a `serde_json` function instantiated
for a gateway type counts as serde_json: read it as "code that crate's
functions compile to", the monomorphised copies included.
"""
from __future__ import annotations

import gzip
import json
import re
import sys
from collections import defaultdict


def _leb(b: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        x = b[i]
        i += 1
        result |= (x & 0x7F) << shift
        shift += 7
        if x < 0x80:
            return result, i


def _sections(b: bytes, start: int):
    i = start
    while i < len(b):
        sid = b[i]
        size, i = _leb(b, i + 1)
        yield sid, b[i:i + size]
        i += size


def _imported_functions(body: bytes) -> int:
    """How many of the module's imports are functions (they come first in the index space)."""
    count, i = _leb(body, 0)
    functions = 0
    for _ in range(count):
        for _ in range(2):  # module and field names
            n, i = _leb(body, i)
            i += n
        kind = body[i]
        i += 1
        if kind == 0:  # function: a type index
            _, i = _leb(body, i)
            functions += 1
        elif kind == 1:  # table: reftype + limits
            i += 1
            flags, i = _leb(body, i)
            _, i = _leb(body, i)
            if flags & 1:
                _, i = _leb(body, i)
        elif kind == 2:  # memory: limits
            flags, i = _leb(body, i)
            _, i = _leb(body, i)
            if flags & 1:
                _, i = _leb(body, i)
        elif kind == 3:  # global: valtype + mutability
            i += 2
        elif kind == 4:  # tag
            i += 1
            _, i = _leb(body, i)
    return functions


def _function_names(body: bytes) -> dict[int, str]:
    names = {}
    n, i = _leb(body, 0)
    i += n  # "name"
    while i < len(body):
        sub = body[i]
        size, i = _leb(body, i + 1)
        if sub == 1:
            count, j = _leb(body, i)
            for _ in range(count):
                idx, j = _leb(body, j)
                length, j = _leb(body, j)
                names[idx] = body[j:j + length].decode(errors="replace")
                j += length
        i += size
    return names


_PRIMITIVES = {"str", "bool", "char", "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64",
               "i128", "isize", "f32", "f64"}


def _crate(name: str) -> str:
    """The crate a demangled Rust function name belongs to: the first path
    segment, or for `<T as Trait>::f` with a generic or primitive `T`, the
    trait's crate."""
    if "$" in name and not name.startswith("_ZN"):  # legacy mangling's escapes, unescaped
        for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$RF$", "&"), ("$u20$", " "), ("$C$", ","),
                     ("$u7b$", "{"), ("$u7d$", "}"), ("$BP$", "*"), ("$u5b$", "["), ("$u5d$", "]")):
            name = name.replace(a, b)
        name = name.lstrip("_").replace("..", "::")
    m = re.match(r"_ZN(\d+)", name)
    if m:  # still mangled: the first path segment, itself an impl path when escaped
        n = int(m.group(1))
        first = name[3 + len(m.group(1)):3 + len(m.group(1)) + n]
        return _crate(first) if "$" in first else first
    bare = re.sub(r"^(<|&|\*const |\*mut |mut |dyn |\[|\()+", "", name)
    head = re.split(r"::|<| as |\s|;|\]|\)", bare, maxsplit=1)[0]
    if (not head or head in _PRIMITIVES or head[0].isupper()) and " as " in name:
        trait = name.split(" as ", 1)[1].lstrip("<&")
        head = re.split(r"::|<", trait, maxsplit=1)[0]
    if not head or not re.match(r"^[a-z_][A-Za-z0-9_]*$", head):
        return "(other: " + (name[:40] if name else "?") + ")"
    return head


def module_sizes(b: bytes, out: dict[str, int], symbols: dict[int, str] | None = None) -> None:
    imported, names, bodies = 0, dict(symbols or {}), []
    for sid, body in _sections(b, 8):
        if sid == 2:
            imported = _imported_functions(body)
        elif sid == 10:
            count, i = _leb(body, 0)
            for _ in range(count):
                size, j = _leb(body, i)
                bodies.append(j - i + size)
                i = j + size
        elif sid == 11:
            out["(data section)"] += len(body)
        elif sid == 0:
            n, i = _leb(body, 0)
            section = body[i:i + n].decode(errors="replace")
            if section == "name":
                names = _function_names(body)
            out[f"(custom section: {section})"] += len(body)
        else:
            out["(other sections)"] += len(body)
    for k, size in enumerate(bodies):
        name = names.get(imported + k)
        out[_crate(name) if name else "(unnamed)"] += size


def read_symbols(path: str) -> dict[int, str]:
    """A `wasm-opt --print-function-map` file: `index:name` per line."""
    out = {}
    for line in open(path, encoding="utf-8", errors="replace"):
        index, _, name = line.rstrip("\n").partition(":")
        if index.isdigit():
            out[int(index)] = name
    return out


def sizes(path: str, symbols: str | None = None) -> tuple[dict[str, int], int, int]:
    b = open(path, "rb").read()
    out: dict[str, int] = defaultdict(int)
    if b[4:8] == b"\x01\x00\x00\x00":
        module_sizes(b, out, read_symbols(symbols) if symbols else None)
    else:  # a component: its core modules (section 1) and the rest
        for sid, body in _sections(b, 8):
            if sid == 1:
                module_sizes(body, out)
            else:
                out["(component sections)"] += len(body)
    return dict(out), len(b), len(gzip.compress(b, 9))


def main() -> int:
    args = sys.argv[1:]
    top = int(args[args.index("--top") + 1]) if "--top" in args else 25
    path = args[0]
    symbols = args[args.index("--symbols") + 1] if "--symbols" in args else None
    per_crate, total, gz = sizes(path, symbols)
    rows = sorted(per_crate.items(), key=lambda kv: -kv[1])
    if "--json" in args:
        print(json.dumps({"total": total, "gzip": gz, "crates": rows}))
        return 0
    print(f"{path}: {total} bytes, {gz} gzip -9")
    for crate, size in rows[:top]:
        print(f"{size:>10}  {100 * size / total:5.1f}%  {crate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
