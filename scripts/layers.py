#!/usr/bin/env python3
"""Holds the crate to its layers (run by `make lint`).

The layers, bottom to top, are listed in LAYERS (ARCHITECTURE.md draws
them). A module may import from its own layer's folder and from the layers
below it, never from one above; no two files may import each other, directly
or round a longer circle. Test modules (`#[cfg(test)]` to the end of a file)
are left out: a unit test may reach for an adapter. A child importing from
its own folder's `mod.rs` is no circle.

  python3 scripts/layers.py          # check; exit 1 with every violation
  python3 scripts/layers.py --self-test  # the check catches a made-up violation
  python3 scripts/layers.py --stats  # also print lines, pub items, the
                                     # longest functions and the cycles

It reads the source as text: `crate::a::b`, `super::x`, `self::x` and
`use child::...` paths, after comments and string literals are removed.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Bottom to top. A top-level module (folder or file) sits in exactly one.
LAYERS = [
    ("protocol", "body"),  # wire formats; no I/O
    ("config",),  # parsed registry and settings
    ("error",),  # the one error enum and its wire mapping
    ("identity",),  # who is calling: pure verification, no I/O
    ("governance",),  # who may do what: pure decisions, no I/O
    ("cache",),  # isolate-lived caches (keep-last-good, bounded)
    ("ports",),  # the traits a platform implements
    ("observe",),  # what the gateway records: the audit trail
    ("upstream",),  # the MCP client towards upstream servers
    ("gateway",),  # the request pipeline that orchestrates the rest
    ("adapters",),  # memory, Workers, Spin
    ("lib",),  # the crate root
    ("bin",),  # command-line tools over the crate (mcp-edge-seed)
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def strip(text):
    """The code without comments, string and char literals, or test modules."""
    out, i, n = [], 0, len(text)
    raw = re.compile(r'b?r(#*)"')
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif (m := raw.match(text, i)) and (i == 0 or not text[i - 1].isalnum()):
            end = '"' + m.group(1)
            j = text.find(end, m.end())
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and (m := re.match(r"'(\\.[^']*|[^\\'])'", text[i:])):
            i += m.end()
            out.append("' '")
        else:
            out.append(c)
            i += 1
    code = "".join(out)
    cut = re.search(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code)
    return code[: cut.start()] if cut else code


def module_of(path):
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return tuple(parts)


def files():
    return {module_of(p): p for p in sorted(SRC.rglob("*.rs"))}


def resolve(path, modules):
    """The longest module prefix of a path, or None."""
    for k in range(len(path), 0, -1):
        if tuple(path[:k]) in modules:
            return tuple(path[:k])
    return None


def imports(module, path, code, modules):
    """The modules this file's code names."""
    is_dir = path.name in ("mod.rs", "lib.rs")
    here = module if is_dir else module[:-1]  # where `self::`/children resolve
    children = {m[-1] for m in modules if m[:-1] == module and len(m) == len(module) + 1}
    found = set()

    def add(segments):
        target = resolve(segments, modules)
        if target is not None and target != module:
            found.add(target)

    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)(::\{([^;]*?)\})?", code):
        head, rest, group = m.group(1), m.group(2).split("::")[1:], m.group(4)
        base = {"crate": (), "self": module if is_dir else module}.get(head)
        if head == "super":
            base = here if not is_dir else module[:-1]
            while rest and rest[0] == "super":
                base, rest = base[:-1], rest[1:]
        elif head == "self":
            base = module
        prefix = list(base) + rest
        add(prefix)
        for item in re.split(r",", group or ""):
            first = re.match(r"\s*(\w+)", item)
            if first:
                add(prefix + [first.group(1)])
    for m in re.finditer(r"\buse\s+(\w+)((?:::\w+)*)", code):
        if m.group(1) in children:
            add(list(module) + [m.group(1)] + m.group(2).split("::")[1:])
    for m in re.finditer(r"\bcrate::\{([^;]*?)\}", code):
        for item in m.group(1).split(","):
            first = re.match(r"\s*(\w+)((?:::\w+)*)", item)
            if first:
                add([first.group(1)] + first.group(2).split("::")[1:])
    return found


def cycles(graph):
    """Strongly connected components of more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def unit(module):
    return module[0] if module else "lib"


def longest_functions(code, count=5):
    found = []
    for m in re.finditer(r"\bfn\s+(\w+)[^;{]*\{", code):
        depth, i = 1, m.end()
        while i < len(code) and depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        lines = code.count("\n", m.start(), i) + 1
        found.append((lines, m.group(1)))
    return sorted(found, reverse=True)[:count]


def check():
    """Every layer problem of the tree under SRC, and the import graph."""
    modules = files()
    problems, graph = [], {}
    for module, path in modules.items():
        code = strip(path.read_text())
        u = unit(module)
        if u not in RANK:
            problems.append(f"{path}: the module '{u}' is in no layer of scripts/layers.py")
            continue
        graph[module] = set()
        for target in imports(module, path, code, modules):
            graph[module].add(target)
            t = unit(target)
            if t in RANK and RANK[t] > RANK[u]:
                problems.append(
                    f"{path.relative_to(SRC.parent)}: imports {'::'.join(target)} "
                    f"('{t}' is above '{u}')"
                )
    folders = {}
    for module, targets in graph.items():
        folders.setdefault(unit(module), set()).update(
            unit(t) for t in targets if unit(t) != unit(module)
        )
    folder_cycles = cycles(folders)
    # A folder's `mod.rs` is its front door: children may use what it
    # defines while it re-exports theirs, so edges to an ancestor don't count.
    file_cycles = cycles({m: {t for t in ts if m[: len(t)] != t} for m, ts in graph.items()})
    for c in folder_cycles:
        problems.append("folders import each other: " + " <-> ".join(c))
    for c in file_cycles:
        problems.append("files import each other: " + " <-> ".join("::".join(m) or "lib" for m in c))
    return modules, problems, folder_cycles, file_cycles


def self_test():
    """The check must catch an upward import and a cycle: run on a made-up
    tree so a broken parser cannot pass the real one by seeing nothing."""
    global SRC
    import tempfile

    real = SRC
    with tempfile.TemporaryDirectory() as tmp:
        SRC = Path(tmp) / "src"
        tree = {
            "lib.rs": "pub mod protocol;\npub mod gateway;\npub mod upstream;\n",
            "protocol/mod.rs": "pub mod jsonrpc;\n",
            # protocol reaching up into the gateway, inside a use group
            "protocol/jsonrpc.rs": "use crate::{gateway::Gateway};\n",
            "gateway/mod.rs": "pub struct Gateway;\nuse crate::upstream::client::X;\n",
            # a circle between two folders' files, one through `super::`
            "upstream/mod.rs": "pub mod client;\npub mod relay;\n",
            "upstream/client.rs": "use super::relay::Y;\npub struct X;\n",
            "upstream/relay.rs": "// use crate::gateway::Gateway; (a comment)\n"
            "pub struct Y;\nfn f() { let _ = crate::upstream::client::X; }\n"
            "#[cfg(test)]\nmod tests { use crate::gateway::Gateway; }\n",
        }
        for name, text in tree.items():
            path = SRC / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        _, problems, _, _ = check()
        SRC = real
    text = "\n".join(problems)
    expected = [
        "src/protocol/jsonrpc.rs: imports gateway ('gateway' is above 'protocol')",
        "files import each other: upstream::client <-> upstream::relay",
    ]
    missing = [e for e in expected if e not in text]
    extra = [p for p in problems if "relay.rs: imports gateway" in p]
    if missing or extra or len(problems) != 2:
        print("layers.py self-test failed; found:\n" + text)
        return 1
    print("layers.py self-test: an upward import and a cycle are caught")
    return 0


def main():
    if "--self-test" in sys.argv:
        return self_test()
    stats = "--stats" in sys.argv
    modules, problems, folder_cycles, file_cycles = check()
    if stats:
        total = items = fields = 0
        longest = []
        for module, path in modules.items():
            text = path.read_text()
            total += text.count("\n")
            code = strip(text)
            items += len(re.findall(r"(?m)^\s*pub\s+(async\s+)?(fn|struct|enum|trait|const|static|type|mod|use)\b", code))
            fields += len(re.findall(r"(?m)^\s*pub\s+\w+\s*:", code))
            longest += [(n, f"{'::'.join(module)}::{name}") for n, name in longest_functions(code)]
        print(f"lines of src/: {total}")
        print(f"pub items (pub, not pub(crate)), outside tests: {items} (and {fields} pub fields)")
        print(f"folder cycles: {len(folder_cycles)}, file cycles: {len(file_cycles)}")
        print("longest functions (lines):")
        for n, name in sorted(longest, reverse=True)[:5]:
            print(f"  {n:4} {name}")
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layer problem(s); the layers are in scripts/layers.py")
        return 1
    print(f"layers hold: {len(modules)} modules, no import from a layer above, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
