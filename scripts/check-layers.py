#!/usr/bin/env python3
"""Fails when two source files of the crate import each other, directly or through others.

An edge A -> B is any path in A (`use`, or inline `crate::…` / `super::…` / `self::…`)
that names an item defined in B. Paths through a module's re-exports are followed to
the file that defines the item, so a `mod.rs` that only declares and re-exports its
children (a hub) never closes a cycle. Prints the edges with --edges.

Usage: python3 scripts/check-layers.py [--edges]
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
ITEM = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:unsafe\s+)?(?:async\s+)?(?:const\s+)?"
                  r"(?:struct|enum|fn|trait|type|const|static|union|macro_rules!)\s+(\w+)", re.M)
IMPL = re.compile(r"^\s*impl(?:<[^>]*>)?\s+(?:[\w:]+\s+for\s+)?(\w+)", re.M)
PATH = re.compile(r"\b((?:crate|super|self)(?:::\w+)+)")
USE_GROUP = re.compile(r"\buse\s+(\w+(?:::\w+)*)::\{([^;]*)\};", re.S)
USE_REL = re.compile(r"\buse\s+(\w+(?:::\w+)+)\s*;")


def module_files():
    """Module path (tuple) -> file, for every .rs file of the library."""
    mods = {}
    for dp, _, fns in os.walk(ROOT):
        for f in fns:
            if not f.endswith(".rs") or dp.startswith(os.path.join(ROOT, "bin")):
                continue
            rel = os.path.relpath(os.path.join(dp, f), ROOT)[:-3].split(os.sep)
            if rel in (["main"],) or rel[0] == "cli":
                continue
            if rel[-1] in ("mod", "lib"):
                rel = rel[:-1]
            mods[tuple(rel)] = os.path.join(dp, f)
    return mods


def strip(src):
    src = re.sub(r"//[^\n]*", "", src)
    return re.sub(r"#\[cfg\(test\)\]\s*mod tests \{.*", "", src, flags=re.S)


def main():
    mods = module_files()
    defs = {m: set(ITEM.findall(strip(open(f).read()))) for m, f in mods.items()}

    def resolve(path, here):
        parts = path.split("::")
        if parts[0] == "crate":
            cur, parts = [], parts[1:]
        elif parts[0] == "self":
            cur, parts = list(here), parts[1:]
        elif parts[0] == "super":
            cur = list(here)
            while parts and parts[0] == "super":
                cur, parts = cur[:-1], parts[1:]
        else:  # a path relative to this module: `use child::Item`
            cur = list(here)
        for name in parts:
            if tuple(cur + [name]) in mods:
                cur = cur + [name]
                continue
            return owner(tuple(cur), name)
        return tuple(cur)

    def owner(mod, name):
        """The file under `mod` that defines `name` (following re-exports)."""
        if name in defs.get(mod, ()):
            return mod
        for m in sorted(mods):
            if m[: len(mod)] == mod and name in defs[m]:
                return m
        return mod

    edges = {}
    for m, f in mods.items():
        src = strip(open(f).read())
        paths = set(PATH.findall(src))
        paths |= {p for p in USE_REL.findall(src) if tuple(m) + (p.split("::")[0],) in mods}
        for prefix, group in USE_GROUP.findall(src):
            head = prefix.split("::")[0]
            if head not in ("crate", "super", "self") and tuple(m) + (head,) not in mods:
                continue
            for item in re.split(r"[,\s]+", re.sub(r"\{[^}]*\}", "", group)):
                if item and item not in ("self",):
                    paths.add(prefix + "::" + item.split("::")[0])
        for p in paths:
            t = resolve(p, m)
            if t and t != m and t in mods and not (m[: len(t)] == t and mods[t].endswith("mod.rs") and not defs[t]):
                edges.setdefault(m, set()).add(t)
    if "--edges" in sys.argv:
        for m in sorted(edges):
            print("::".join(m) or "lib", "->", ", ".join(sorted("::".join(t) or "lib" for t in edges[m])))
    cycles = find_cycles(edges)
    for c in cycles:
        print("cycle:", " -> ".join("::".join(x) or "lib" for x in c))
    print(f"{len(mods)} files, {sum(len(v) for v in edges.values())} edges, {len(cycles)} cycles")
    return 1 if cycles else 0


def find_cycles(edges):
    cycles, state, stack = [], {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for t in sorted(edges.get(n, ())):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return cycles


if __name__ == "__main__":
    sys.exit(main())
