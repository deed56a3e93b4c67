#!/usr/bin/env python3
"""Module layering and file size check for the Stompbox workspace (issue 11, item 7).

Run from the workspace root (the current directory is the tree that is checked):

    python3 scripts/check-modules.py             # both checks; exit 1 if either fails
    python3 scripts/check-modules.py --report    # also print the module graph and longest files
    python3 scripts/check-modules.py --all-crates  # layering of every library crate, not only the broker
    python3 scripts/check-modules.py --selftest  # prove on a fake crate that cycles are found

Check 1, no import cycles between a crate's modules (default: broker/src, crate `stompbox`),
at two levels:
  * top-level modules (`router`, `session`, `chat`, ...): a directory module and its children
    count as one;
  * files: every .rs file is one module (`router/mod.rs` is `router`, `router/queue.rs` is
    `router::queue`).
Edges come from, in code only (comments and string literals are blanked first):
  * `use` declarations, grouped and multi-line ones included: `use crate::a::{b, c::D};`;
  * `crate::`, `self::` and `super::` paths written inline in code, `super` resolved to the
    parent module;
  * bare paths through a child module (`queue::Queue::new()` in `router/mod.rs`).
A path points at the longest prefix of it that is a module file (`crate::router::queue::Queue`
is an edge to `router::queue`). What does not count:
  * an edge from a module to itself (and, at the top level, edges inside one top-level module);
  * a parent declaring or re-exporting its children: `mod child;` and `pub use child::X` (any
    `pub(..) use` of a descendant) are not edges. A private `use child::X`, or code calling
    `child::f()`, is an edge parent -> child, so a parent and a child that use each other
    (child: `super::X`) form a cycle like any other pair;
  * code under `#[cfg(test)]` (test modules and test-only `use`s): layering is about the
    product; tests may reach across it. Files declared as `#[cfg(test)] mod x;` are skipped;
  * `$crate::` paths inside macros, and `pub(in crate::x)` visibilities.
Wiring: `lib.rs` and `main.rs` (and `src/bin/`) are crate roots, outside the graph (they may
depend on everything; a path to an item of `lib.rs` itself goes nowhere). `broker.rs`, the
broker's wiring (it builds the router, chat, cluster and stores from the config), stays in the
graph as a node but its OUTGOING edges are dropped: it may depend on everything, so it can never
close a cycle, while the modules that depend on it (take `&Broker`) stay visible: `--report`
lists them. Change the set with `--wiring PATH` (repeatable; `--wiring none` for none).

Check 2, no non-test source file over 600 lines: every `*.rs` under `<member>/src/` of every
workspace member (from the root Cargo.toml), `src/bin/` included, excluding directories named
`tests`, `benches`, `fuzz`, `fuzz_targets` and test-only files (declared `#[cfg(test)] mod x;`).
A file's count is its lines minus the lines of its `#[cfg(test)]` items (the trailing
`#[cfg(test)] mod tests { ... }` and test-only `use`s), so the count is the product code.

Exit status: 0 when both checks pass, 1 when either fails, 2 on usage errors. Python 3.11
standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import tomllib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

MAX_LINES = 600
DEFAULT_CRATES = ["broker/src"]
ALL_CRATES = ["broker/src", "chat-store/src", "persistence-sink/src", "stomp-codec/src"]
DEFAULT_WIRING = ["broker/src/broker.rs"]
SKIPPED_DIRS = {"tests", "benches", "fuzz", "fuzz_targets", "target"}

# ---------------------------------------------------------------------------------------------
# Lexing: blank comments and literals, keep line breaks so offsets still map to lines.
# ---------------------------------------------------------------------------------------------

RAW_STRING = re.compile(r'(?:br|cr|r)(#*)"')
CFG_TEST = re.compile(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]")
ATTRIBUTE = re.compile(r"\s*#!?\[")
IDENT_START = re.compile(r"[A-Za-z_]")


def _blank(text: str) -> str:
    return "".join(c if c == "\n" else " " for c in text)


def strip_code(src: str) -> str:
    """Return `src` with comments, string, byte-string and char literals replaced by spaces."""
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(_blank(src[i:j]))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(_blank(src[i:j]))
            i = j
        elif c in "brc" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")) and (
            m := RAW_STRING.match(src, i)
        ):
            end = src.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(_blank(src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('"' + _blank(src[i + 1 : j - 1]) + '"')
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime / label ('a, 'outer:).
            if i + 1 < n and src[i + 1] == "\\":
                j = i + 2
                while j < n and src[j] != "'":
                    j += 2 if src[j] == "\\" else 1
                j = min(j + 1, n)
                out.append(_blank(src[i:j]))
                i = j
            elif i + 2 < n and src[i + 2] == "'":
                out.append("   ")
                i += 3
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def match_brace(code: str, open_at: int) -> int:
    """Index just past the `}` matching the `{` at `open_at` (len(code) if unbalanced)."""
    depth = 0
    for j in range(open_at, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return len(code)


def item_end(code: str, start: int) -> int:
    """End of the item starting at `start`: after its top-level `;` or its `{...}` body."""
    depth = 0
    for j in range(start, len(code)):
        ch = code[j]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch == ";":
            return j + 1
        elif depth == 0 and ch == "{":
            return match_brace(code, j)
    return len(code)


@dataclass
class Parsed:
    code: str  # comments/literals blanked, #[cfg(test)] items blanked
    test_lines: int  # lines taken by #[cfg(test)] items
    test_mods: list[str]  # `#[cfg(test)] mod x;` declarations (test-only files)


def parse_source(src: str) -> Parsed:
    code = strip_code(src)
    test_mods: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    while m := CFG_TEST.search(code, pos):
        j = m.end()
        while a := ATTRIBUTE.match(code, j):  # further attributes on the same item
            depth, k = 0, a.end() - 1
            for k in range(a.end() - 1, len(code)):
                depth += {"[": 1, "]": -1}.get(code[k], 0)
                if depth == 0:
                    break
            j = k + 1
        end = item_end(code, j)
        if mm := re.match(r"\s*(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(\w+)\s*;", code[j:end]):
            test_mods.append(mm.group(1))
        spans.append((m.start(), end))
        pos = end
    test_lines = 0
    chars = list(code)
    for start, end in spans:
        line_start = code.rfind("\n", 0, start) + 1
        line_end = code.find("\n", end)
        line_end = len(code) if line_end < 0 else line_end
        test_lines += code.count("\n", line_start, line_end) + 1
        for k in range(start, end):
            if chars[k] != "\n":
                chars[k] = " "
    return Parsed("".join(chars), test_lines, test_mods)


# ---------------------------------------------------------------------------------------------
# Module graph
# ---------------------------------------------------------------------------------------------

Mod = tuple[str, ...]


@dataclass
class Edge:
    where: list[str] = field(default_factory=list)  # "file:line" of every occurrence


@dataclass
class Crate:
    root: Path  # the src directory
    files: dict[Mod, Path]  # module path -> file
    edges: dict[Mod, dict[Mod, Edge]]  # file-level edges
    wiring: set[Mod]


USE_DECL = re.compile(r"(?<![\w$])(pub\s*(?:\([^)]*\))?\s*)?use\s+([^;]*);", re.S)
INLINE_PATH = re.compile(r"(?<![\w$:])(?:crate|self|super)(?:\s*::\s*\w+)+")
BARE_PATH = re.compile(r"(?<![\w$:.])([a-z_]\w*)\s*::\s*\w")
INLINE_MOD = re.compile(r"(?<![\w$])mod\s+(\w+)\s*\{")
PUB_IN = re.compile(r"pub\s*\(\s*in\s+[^)]*\)")
USE_TOKEN = re.compile(r"::|[{},*]|r#\w+|\w+")


def module_of(root: Path, path: Path) -> Mod | None:
    rel = path.relative_to(root)
    parts = list(rel.parts)
    if parts[0] == "bin" or rel.as_posix() in ("lib.rs", "main.rs"):
        return () if rel.as_posix() == "lib.rs" else None
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def children_dir(root: Path, path: Path) -> Path:
    """The directory holding the files of the modules that `path` declares."""
    if path.name in ("mod.rs", "lib.rs", "main.rs"):
        return path.parent
    return path.parent / path.stem


def expand_use(tree: str) -> list[list[str]]:
    """`a::{b, c::{d, e as f}, *}` -> [[a,b], [a,c,d], [a,c,e], [a]] (globs end at their prefix)."""
    tokens = USE_TOKEN.findall(tree)
    pos = 0

    def parse(prefix: list[str]) -> list[list[str]]:
        nonlocal pos
        path = list(prefix)
        out: list[list[str]] = []
        while pos < len(tokens):
            tok = tokens[pos]
            if tok == "::":
                pos += 1
            elif tok == "{":
                pos += 1
                while pos < len(tokens) and tokens[pos] != "}":
                    if tokens[pos] == ",":
                        pos += 1
                        continue
                    out.extend(parse(path))
                pos += 1
                return out
            elif tok == "*":
                pos += 1
                return [path]
            elif tok in (",", "}"):
                break
            elif tok == "as":
                pos += 2
                break
            else:
                path.append(tok)
                pos += 1
        return out or [path]

    result: list[list[str]] = []
    while pos < len(tokens):
        if tokens[pos] == ",":
            pos += 1
            continue
        before = pos
        result.extend(parse([]))
        if pos == before:
            pos += 1
    return result


def resolve(crate: Crate, current: Mod, segs: list[str]) -> Mod | None:
    """The module file a path points into, or None (external crate, std, the crate root)."""
    segs = [s for s in segs if s]
    if not segs:
        return None
    if segs[0] == "crate":
        base: list[str] = []
        rest = segs[1:]
    elif segs[0] in ("self", "super"):
        base = list(current)
        rest = segs
        while rest and rest[0] in ("self", "super"):
            if rest[0] == "super":
                if not base:
                    return None
                base.pop()
            rest = rest[1:]
    elif (*current, segs[0]) in crate.files:  # 2018 relative path through a child module
        base, rest = list(current), segs
    else:
        return None
    full = base + [s for s in rest if s != "self"]
    for k in range(len(full), 0, -1):
        if tuple(full[:k]) in crate.files:
            return tuple(full[:k])
    return None


def module_at(code: str, file_mod: Mod, inline: list[tuple[int, int, str]], pos: int) -> Mod:
    names = [name for (start, end, name) in inline if start <= pos < end]
    return (*file_mod, *names)


def load_crate(root: Path, wiring: list[Path]) -> Crate:
    paths = sorted(p for p in root.rglob("*.rs") if not SKIPPED_DIRS & set(p.relative_to(root).parts[:-1]))
    parsed = {p: parse_source(p.read_text(encoding="utf-8")) for p in paths}
    test_files: set[Path] = set()
    for p, info in parsed.items():
        for name in info.test_mods:
            d = children_dir(root, p)
            test_files.update({d / f"{name}.rs", d / name / "mod.rs"})
            test_files.update((d / name).rglob("*.rs") if (d / name).is_dir() else [])
    files: dict[Mod, Path] = {}
    for p in paths:
        mod = module_of(root, p)
        if mod is not None and p not in test_files:
            files[mod] = p
    wiring_mods = {m for m, p in files.items() if any(p.resolve() == w.resolve() for w in wiring)}
    crate = Crate(root, files, defaultdict(dict), wiring_mods)

    for mod, p in files.items():
        if mod == ():
            continue  # lib.rs: the crate root is wiring, outside the graph
        code = PUB_IN.sub(lambda m: _blank(m.group(0)), parsed[p].code)
        inline: list[tuple[int, int, str]] = []
        for m in INLINE_MOD.finditer(code):
            inline.append((m.end() - 1, match_brace(code, m.end() - 1), m.group(1)))

        def line_of(pos: int) -> int:
            return code.count("\n", 0, pos) + 1

        def add(src: Mod, dst: Mod | None, pos: int) -> None:
            src_file = next(m for m in [src[:k] for k in range(len(src), -1, -1)] if m in files)
            if dst is None or dst == src_file or dst == ():
                return
            edge = crate.edges[src_file].setdefault(dst, Edge())
            edge.where.append(f"{Path(os.path.relpath(p)).as_posix()}:{line_of(pos)}")

        # `use` declarations, then blank them so the inline scan does not see them twice.
        chars = list(code)
        for m in USE_DECL.finditer(code):
            current = module_at(code, mod, inline, m.start())
            is_pub = m.group(1) is not None
            for segs in expand_use(m.group(2)):
                dst = resolve(crate, current, segs)
                if is_pub and dst is not None and dst[: len(current)] == current:
                    continue  # a parent re-exporting its descendant
                add(current, dst, m.start())
            for k in range(m.start(), m.end()):
                if chars[k] != "\n":
                    chars[k] = " "
        code = "".join(chars)
        for m in INLINE_PATH.finditer(code):
            segs = re.split(r"\s*::\s*", m.group(0))
            add(module_at(code, mod, inline, m.start()), resolve(crate, module_at(code, mod, inline, m.start()), segs), m.start())
        for m in BARE_PATH.finditer(code):
            current = module_at(code, mod, inline, m.start())
            if (*current, m.group(1)) in files:
                add(current, (*current, m.group(1)), m.start())
    return crate


def top_level(crate: Crate) -> dict[Mod, dict[Mod, Edge]]:
    graph: dict[Mod, dict[Mod, Edge]] = defaultdict(dict)
    for src, dsts in crate.edges.items():
        for dst, edge in dsts.items():
            a, b = src[:1], dst[:1]
            if a != b:
                graph[a].setdefault(b, Edge()).where.extend(edge.where)
    return graph


def without_wiring(graph: dict[Mod, dict[Mod, Edge]], wiring: set[Mod]) -> dict[Mod, dict[Mod, Edge]]:
    return {src: dsts for src, dsts in graph.items() if src not in wiring}


def sccs(nodes: set[Mod], graph: dict[Mod, dict[Mod, Edge]]) -> list[list[Mod]]:
    """Tarjan's strongly connected components (iterative), components of 2+ nodes only."""
    index: dict[Mod, int] = {}
    low: dict[Mod, int] = {}
    on_stack: set[Mod] = set()
    stack: list[Mod] = []
    out: list[list[Mod]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, {}))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(graph.get(nxt, {})))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return sorted(out)


def shortest_cycle(comp: list[Mod], graph: dict[Mod, dict[Mod, Edge]]) -> list[Mod]:
    members = set(comp)
    best: list[Mod] = []
    for start in comp:
        prev: dict[Mod, Mod] = {}
        queue = deque([start])
        found = False
        while queue and not found:
            node = queue.popleft()
            for nxt in sorted(graph.get(node, {})):
                if nxt not in members:
                    continue
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    cycle = [start, *reversed(path[:-1]), start]
                    if not best or len(cycle) < len(best):
                        best = cycle
                    found = True
                    break
                if nxt not in prev:
                    prev[nxt] = node
                    queue.append(nxt)
    return best


def name(mod: Mod, crate: Crate | None = None, file_level: bool = False) -> str:
    if file_level and crate is not None:
        return crate.files[mod].relative_to(crate.root).as_posix()
    return "::".join(mod) or "crate"


def where(edge: Edge, verbose: bool) -> str:
    locs = sorted(set(edge.where), key=lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])))
    if verbose or len(locs) == 1:
        return ", ".join(locs)
    return f"{locs[0]} (+{len(locs) - 1} more)"


def lineal(a: Mod, b: Mod) -> bool:
    """True when one module is the other's ancestor (parent, grandparent, ...)."""
    return a[: len(b)] == b or b[: len(a)] == a


def check_layering(crate: Crate, report: bool, verbose: bool, out, allow_parent_child: bool = False) -> list[str]:
    """Prints the cycles (and with `report` the graph); returns one line per cycle found."""
    failures: list[str] = []
    file_graph = without_wiring(crate.edges, crate.wiring)
    if allow_parent_child:
        file_graph = {a: {b: e for b, e in d.items() if not lineal(a, b)} for a, d in file_graph.items()}
    levels = [
        ("top-level modules", without_wiring(top_level(crate), crate.wiring), {m[:1] for m in crate.files if m}, False),
        ("files", file_graph, {m for m in crate.files if m}, True),
    ]
    for label, graph, nodes, file_level in levels:
        comps = sccs(nodes, graph)
        n_edges = sum(len(d) for d in graph.values())
        status = "ok" if not comps else f"{len(comps)} cycle(s)"
        print(f"  {label}: {len(nodes)} modules, {n_edges} edges: {status}", file=out)
        for comp in comps:
            cycle = shortest_cycle(comp, graph)
            arrow = " -> ".join(name(m) for m in cycle)
            failures.append(f"{Path(os.path.relpath(crate.root)).as_posix()} {label}: {arrow}")
            print(f"    CYCLE among {{{', '.join(name(m) for m in comp)}}}", file=out)
            print(f"      shortest: {arrow}", file=out)
            for a, b in zip(cycle, cycle[1:]):
                print(f"        {name(a)} -> {name(b)}: {where(graph[a][b], verbose)}", file=out)
            inner = [(a, b) for a in comp for b in sorted(graph.get(a, {})) if b in comp]
            if len(inner) > len(cycle) - 1:
                print("      every edge inside the component (cut enough of them to break it):", file=out)
                for a, b in inner:
                    print(f"        {name(a)} -> {name(b)}: {where(graph[a][b], verbose)}", file=out)
        if report and label == "top-level modules":
            for src in sorted(nodes):
                dsts = sorted(graph.get(src, {}))
                wired = " (wiring: outgoing edges not checked)" if src in {w[:1] for w in crate.wiring} else ""
                print(f"    {name(src)} -> {', '.join(name(d) for d in dsts) or '(nothing)'}{wired}", file=out)
            users = sorted(
                {src for src, dsts in crate.edges.items() for d in dsts if d in crate.wiring and src not in crate.wiring}
            )
            if crate.wiring:
                wiring_names = ", ".join(name(w) for w in sorted(crate.wiring))
                print(f"    modules that depend on the wiring ({wiring_names}): "
                      f"{', '.join(name(u) for u in users) or '(none)'}", file=out)
    return failures


# ---------------------------------------------------------------------------------------------
# File sizes
# ---------------------------------------------------------------------------------------------


def workspace_members(root: Path) -> list[Path]:
    manifest = tomllib.loads((root / "Cargo.toml").read_text(encoding="utf-8"))
    members: list[Path] = []
    for pattern in manifest.get("workspace", {}).get("members", []):
        members.extend(sorted(p for p in root.glob(pattern) if (p / "Cargo.toml").is_file()))
    return members


def source_sizes(root: Path) -> list[tuple[int, str]]:
    sizes: list[tuple[int, str]] = []
    for member in workspace_members(root):
        src = member / "src"
        if not src.is_dir():
            continue
        paths = sorted(p for p in src.rglob("*.rs") if not SKIPPED_DIRS & set(p.relative_to(src).parts[:-1]))
        parsed = {p: parse_source(p.read_text(encoding="utf-8")) for p in paths}
        test_files: set[Path] = set()
        for p, info in parsed.items():
            for mod_name in info.test_mods:
                d = children_dir(src, p)
                test_files.update({d / f"{mod_name}.rs", d / mod_name / "mod.rs"})
                test_files.update((d / mod_name).rglob("*.rs") if (d / mod_name).is_dir() else [])
        for p, info in parsed.items():
            if p in test_files:
                continue
            text = p.read_text(encoding="utf-8")
            lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
            sizes.append((lines - info.test_lines, p.relative_to(root).as_posix()))
    return sorted(sizes, key=lambda s: (-s[0], s[1]))


def check_sizes(root: Path, report: bool, out) -> list[str]:
    sizes = source_sizes(root)
    over = [(n, p) for n, p in sizes if n > MAX_LINES]
    print(f"  {len(sizes)} non-test source files; over {MAX_LINES} lines: {len(over) or 'none'}", file=out)
    for n, p in over:
        print(f"    TOO LONG {n:5d} {p}", file=out)
    if report or over:
        print("  ten longest (lines without #[cfg(test)] items):", file=out)
        for n, p in sizes[:10]:
            print(f"    {n:5d} {p}", file=out)
    return [f"{p}: {n} lines (max {MAX_LINES})" for n, p in over]


# ---------------------------------------------------------------------------------------------
# Driver and self-test
# ---------------------------------------------------------------------------------------------


def run(root: Path, crates: list[str], wiring: list[str], report: bool, verbose: bool, out,
        allow_parent_child: bool = False) -> int:
    failures: list[str] = []
    for crate_dir in crates:
        src = root / crate_dir
        if not src.is_dir():
            print(f"check-modules: no such directory: {src}", file=sys.stderr)
            return 2
        print(f"module layering: {crate_dir}", file=out)
        crate = load_crate(src, [root / w for w in wiring if w != "none"])
        failures += check_layering(crate, report, verbose, out, allow_parent_child)
    print("file size:", file=out)
    failures += check_sizes(root, report, out)
    if failures:
        print(f"\ncheck-modules: FAILED ({len(failures)} problem(s)):", file=out)
        for f in failures:
            print(f"  {f}", file=out)
        return 1
    print("\ncheck-modules: ok", file=out)
    return 0


SELFTEST_FILES = {
    "Cargo.toml": '[workspace]\nmembers = ["fake"]\n',
    "fake/Cargo.toml": '[package]\nname = "fake"\n',
    "fake/src/lib.rs": "pub mod a;\npub mod b;\npub mod c;\npub mod d;\npub mod e;\npub mod wiring;\n"
    "use crate::a::A;\n",
    # a -> b through a grouped, multi-line use
    "fake/src/a.rs": "use crate::{\n    b::{\n        B,\n    },\n};\npub struct A;\n",
    # b -> c through an inline path; a comment and a string naming d must not count
    "fake/src/b.rs": 'pub struct B;\n// crate::d::D\nconst S: &str = "crate::d::D";\n'
    "/* crate::d::D */\nfn f() { crate::c::run(); let _ = '\\''; }\n",
    # c -> a through super:: from a directory module: closes the cycle a -> b -> c -> a
    "fake/src/c/mod.rs": "mod inner;\npub use inner::Inner;\npub fn run() { let _ = super::a::A; }\n",
    # a child using its parent, with the parent only re-exporting it: no cycle
    "fake/src/c/inner.rs": "use super::run;\npub struct Inner;\n",
    # d <-> e only in test code: no cycle; d -> e in product code
    "fake/src/d.rs": "use crate::e::E;\npub struct D;\n#[cfg(test)]\nmod tests {\n    use crate::e::E;\n}\n",
    "fake/src/e.rs": "pub struct E;\n#[cfg(test)]\nuse crate::d::D;\n#[cfg(test)]\nmod tests;\n"
    + "\n" * 590
    + "#[cfg(test)]\nmod more {\n" + "    // test\n" * 100 + "}\n",
    "fake/src/e/tests.rs": "use crate::d::D;\n" + "\n" * 700,
    # the wiring may depend on everything: wiring -> a is not checked, a -> wiring is an edge
    "fake/src/wiring.rs": "use crate::{a, b, c, d, e};\n",
    # parent <-> child through a private use in the parent: a cycle at the file level only
    "fake/src/p/mod.rs": "mod q;\nuse q::Q;\npub struct P;\n",
    "fake/src/p/q.rs": "pub struct Q(super::P);\n",
    # over the limit
    "fake/src/big.rs": "fn x() {}\n" * 601,
}


def selftest() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="check-modules-"))
    try:
        for rel, text in SELFTEST_FILES.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        lib = tmp / "fake/src/lib.rs"
        lib.write_text(lib.read_text() + "pub mod p;\nmod big;\n")
        crate = load_crate(tmp / "fake/src", [tmp / "fake/src/wiring.rs"])
        problems: list[str] = []

        def expect(ok: bool, what: str) -> None:
            if not ok:
                problems.append(what)

        edges = {(name(a), name(b)) for a, dsts in crate.edges.items() for b in dsts}
        expect(("a", "b") in edges, "grouped multi-line use a -> b")
        expect(("b", "c") in edges, "inline path b -> c")
        expect(("c", "a") in edges, "super:: path c -> a")
        expect(("b", "d") not in edges, "comment/string must not make b -> d")
        expect(("c", "c::inner") not in edges, "pub use of a child is not an edge")
        expect(("c::inner", "c") in edges, "child -> parent via super::")
        expect(("e", "d") not in edges, "#[cfg(test)] use must not count")
        expect(("d", "e") in edges, "product use d -> e")
        expect(("p", "p::q") in edges and ("p::q", "p") in edges, "parent <-> child edges")
        expect(("wiring", "a") in edges, "wiring edges are recorded")
        expect(not any(m[:1] == ("e",) and len(m) > 1 for m in crate.files), "test-only file excluded")
        top = sccs({m[:1] for m in crate.files if m}, without_wiring(top_level(crate), crate.wiring))
        expect([[("a",), ("b",), ("c",)]] == top, f"top-level cycle a-b-c only, got {top}")
        files = sccs({m for m in crate.files if m}, without_wiring(crate.edges, crate.wiring))
        expect([("p",), ("p", "q")] in files, f"file cycle p <-> p::q, got {files}")
        expect([("a",), ("b",), ("c",)] in files, f"file cycle a-b-c, got {files}")
        expect(len(files) == 2, f"exactly two file-level cycles, got {files}")
        sizes = dict((p, n) for n, p in source_sizes(tmp))
        expect(sizes.get("fake/src/big.rs") == 601, f"big.rs counted 601, got {sizes.get('fake/src/big.rs')}")
        expect(sizes.get("fake/src/e.rs", 999) <= 600, f"e.rs without test items <= 600, got {sizes.get('fake/src/e.rs')}")
        expect("fake/src/e/tests.rs" not in sizes, "test-only file not counted")
        null = open(os.devnull, "w")
        expect(run(tmp, ["fake/src"], ["fake/src/wiring.rs"], False, False, null) == 1, "run() fails on the fake crate")
        if problems:
            print("check-modules selftest FAILED:")
            for p in problems:
                print(f"  {p}")
            return 1
        print("check-modules selftest: ok (cycles, parent/child, wiring, test code, sizes)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", action="store_true", help="print the module graph and the ten longest files")
    ap.add_argument("--verbose", action="store_true", help="print every file:line of each edge")
    ap.add_argument("--crate", dest="crates", action="append", metavar="DIR",
                    help=f"src directory whose modules are checked (repeatable; default {DEFAULT_CRATES})")
    ap.add_argument("--all-crates", action="store_true", help=f"check {ALL_CRATES}")
    ap.add_argument("--wiring", action="append", metavar="PATH",
                    help=f"file whose outgoing edges are not checked (default {DEFAULT_WIRING}; 'none')")
    ap.add_argument("--allow-parent-child", action="store_true",
                    help="file level: ignore edges between a module and its own ancestors/descendants")
    ap.add_argument("--selftest", action="store_true", help="check the checker on a fake crate")
    args = ap.parse_args()
    if args.selftest:
        return selftest()
    crates = ALL_CRATES if args.all_crates else (args.crates or DEFAULT_CRATES)
    return run(Path.cwd(), crates, args.wiring or DEFAULT_WIRING, args.report, args.verbose, sys.stdout,
               args.allow_parent_child)


if __name__ == "__main__":
    sys.exit(main())
