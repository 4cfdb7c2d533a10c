#!/usr/bin/env python3
"""Import graph of daemon/src: which top-level module uses which, read from the
`crate::` paths in the code (use lines and inline paths, tests excluded).

Fails on an import circle between top-level modules, and on a module importing
from a layer above it (the rooms of daemon/DESIGN.md).
Usage: tests/lint/layers.py [--graph]
"""
import os
import re
import sys

SRC = os.path.join(os.path.dirname(__file__), "..", "..", "daemon", "src")

# Lower number = lower layer. A module may import only from a strictly lower
# layer, or from its own module. Front ends live in the binary (main.rs).
LAYERS = {
    "util": 0,
    "config": 1,
    "policy": 2,
    "plan": 3,
    # the kernel edge speaks the core's plain types; nothing in the core imports it
    "sys": 4,
    "sources": 5, "explain": 5,
    "engine": 6,
    "health": 7, "lists": 7, "dns": 7,
    "clients": 8,
    # the binary's front ends (main.rs): over everything, in one direction among themselves
    "api": 9, "daemon": 10, "cli": 11,
}
ALLOWED = set()


def strip_tests(text):
    """Drop `#[cfg(test)] mod ... { ... }` blocks (brace-matched)."""
    out, i = [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        out.append(text[i:m.start()])
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j
    out.append(text[i:])
    return "".join(out)


def crate_paths(text):
    """Top-level modules named after `crate::`, including inside `use crate::{...}` groups."""
    found = set()
    for m in re.finditer(r"crate::\{", text):
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        group = text[m.end():j - 1]
        # top-level items of the group: split at depth 0 commas
        depth, start = 0, 0
        for k, c in enumerate(group + ","):
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
            elif c == "," and depth == 0:
                item = group[start:k].strip()
                start = k + 1
                name = re.match(r"(\w+)", item)
                if name:
                    found.add(name.group(1))
    for m in re.finditer(r"crate::(\w+)", text):
        found.add(m.group(1))
    return found


def module_of(rel):
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def graph():
    edges = {}
    for root, _, files in os.walk(SRC):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(root, f)
            rel = os.path.relpath(path, SRC)
            mod = module_of(rel)
            if mod in ("lib", "main"):
                continue
            if f == "tests.rs":
                continue
            text = strip_tests(open(path, encoding="utf-8").read())
            text = re.sub(r"//.*", "", text)
            for dep in crate_paths(text):
                if dep != mod and dep not in ("self", "super"):
                    edges.setdefault(mod, {}).setdefault(dep, set()).add(rel)
    return edges


def cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, {}):
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

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def main():
    edges = graph()
    if "--graph" in sys.argv:
        for mod in sorted(edges):
            print(f"{mod}: {' '.join(sorted(edges[mod]))}")
    problems = []
    for comp in cycles(edges):
        problems.append("import circle: " + " -> ".join(comp))
    for mod, deps in sorted(edges.items()):
        for dep, files in sorted(deps.items()):
            lm, ld = LAYERS.get(mod), LAYERS.get(dep)
            if lm is None:
                problems.append(f"{mod}: a top-level module with no layer (add it to LAYERS in {__file__})")
                break
            if ld is None:
                continue
            if ld >= lm and (mod, dep) not in ALLOWED:
                problems.append(f"{mod} (layer {lm}) imports {dep} (layer {ld}) in {', '.join(sorted(files))}")
    for p in problems:
        print(p)
    print(f"layers: {len(edges)} modules, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
