#!/usr/bin/env python3
"""Module layering and file size check for the Stompbox workspace (issue 11, item 7).

Run from the workspace root (the current directory is the tree that is checked):

    python3 scripts/check-modules.py             # both checks; exit 1 if either fails
    python3 scripts/check-modules.py --report    # also print the module graph and longest files
    python3 scripts/check-modules.py --all-crates  # every library crate, not only the broker
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
lists them. (As a normal node it would turn every context it hands out into a cycle:
session -> broker -> chat -> session once the chat implements the session's application trait.) Change the set with `--wiring PATH` (repeatable; `--wiring none` for none).
`--wiring-only MODULE` (repeatable, off by default) also fails when a top-level module other
than the wiring depends on MODULE (issue 11: "nothing but the wiring depends on `cluster/`").
`--allow-parent-child` drops the file-level edges between a module and its ancestors.

Check 2, no non-test source file over 600 lines: every `*.rs` under `<member>/src/` of every
workspace member (from the root Cargo.toml), `src/bin/` included, excluding directories named
`tests`, `benches`, `fuzz`, `fuzz_targets` and test-only files (declared `#[cfg(test)] mod x;`).
A file's count is its lines minus the lines of its `#[cfg(test)]` items (the trailing
`#[cfg(test)] mod tests { ... }` and test-only `use`s), so the count is the product code.

Exit status: 0 when both checks pass, 1 when either fails, 2 on usage errors. Python 3.11
standard library only; the lexer is check_modules_lex.py and the self-test (`--selftest`, a
fake crate with known cycles, so the check cannot pass by finding nothing) is
check_modules_selftest.py, both beside this file.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tomllib
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

# Beside this file (sys.path[0] when run as a script): blanking comments, literals, test code.
from check_modules_lex import Parsed, blank, match_brace, parse_source

MAX_LINES = 600
DEFAULT_CRATES = ["broker/src"]
ALL_CRATES = ["broker/src", "chat-store/src", "persistence-sink/src", "stomp-codec/src"]
DEFAULT_WIRING = ["broker/src/broker.rs"]
SKIPPED_DIRS = {"tests", "benches", "fuzz", "fuzz_targets", "target"}

# ---------------------------------------------------------------------------------------------
# Module graph
# ---------------------------------------------------------------------------------------------

Mod = tuple[str, ...]


@dataclass
class Edge:
    where: list[str] = field(default_factory=list)  # "file:line" of every occurrence


Graph = dict[Mod, dict[Mod, Edge]]  # module -> module it depends on -> where


@dataclass
class Crate:
    root: Path  # the src directory
    files: dict[Mod, Path]  # module path -> file
    edges: Graph  # file-level edges
    wiring: set[Mod]


USE_DECL = re.compile(r"(?<![\w$])(pub\s*(?:\([^)]*\))?\s*)?use\s+([^;]*);", re.S)
INLINE_PATH = re.compile(r"(?<![\w$:])(?:crate|self|super)(?:\s*::\s*\w+)+")
BARE_PATH = re.compile(r"(?<![\w$:.])([a-z_]\w*)\s*::\s*\w")
INLINE_MOD = re.compile(r"(?<![\w$])mod\s+(\w+)\s*\{")
PUB_IN = re.compile(r"pub\s*\(\s*in\s+[^)]*\)")
USE_TOKEN = re.compile(r"::|[{},*]|r#\w+|\w+")


def rust_files(src: Path) -> list[Path]:
    """The .rs files under `src`, outside test, bench and fuzz directories."""
    return sorted(
        p for p in src.rglob("*.rs") if not SKIPPED_DIRS & set(p.relative_to(src).parts[:-1])
    )


def module_of(root: Path, path: Path) -> Mod | None:
    rel = path.relative_to(root)
    parts = list(rel.parts)
    if parts[0] == "bin" or rel.as_posix() in ("lib.rs", "main.rs"):
        return () if rel.as_posix() == "lib.rs" else None
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "mod":
        parts.pop()
    return tuple(parts)


def test_only_files(parsed: dict[Path, Parsed]) -> set[Path]:
    """Files declared `#[cfg(test)] mod x;` by their parent, and everything under them."""
    out: set[Path] = set()
    for p, info in parsed.items():
        for mod_name in info.test_mods:
            d = children_dir(p) / mod_name
            out.update({d.with_suffix(".rs"), d / "mod.rs"}, d.rglob("*.rs") if d.is_dir() else [])
    return out


def children_dir(path: Path) -> Path:
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
    paths = rust_files(root)
    parsed = {p: parse_source(p.read_text(encoding="utf-8")) for p in paths}
    test_files = test_only_files(parsed)
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
        code = PUB_IN.sub(lambda m: blank(m.group(0)), parsed[p].code)
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
            current = module_at(code, mod, inline, m.start())
            add(current, resolve(crate, current, segs), m.start())
        for m in BARE_PATH.finditer(code):
            current = module_at(code, mod, inline, m.start())
            if (*current, m.group(1)) in files:
                add(current, (*current, m.group(1)), m.start())
    return crate


def top_level(crate: Crate) -> Graph:
    graph: Graph = defaultdict(dict)
    for src, dsts in crate.edges.items():
        for dst, edge in dsts.items():
            a, b = src[:1], dst[:1]
            if a != b:
                graph[a].setdefault(b, Edge()).where.extend(edge.where)
    return graph


def without_wiring(graph: Graph, wiring: set[Mod]) -> Graph:
    return {src: dsts for src, dsts in graph.items() if src not in wiring}


def sccs(nodes: set[Mod], graph: Graph) -> list[list[Mod]]:
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


def shortest_cycle(comp: list[Mod], graph: Graph) -> list[Mod]:
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


def name(mod: Mod) -> str:
    return "::".join(mod) or "crate"


def where(edge: Edge, verbose: bool) -> str:
    locs = sorted(set(edge.where), key=lambda s: (s.rsplit(":", 1)[0], int(s.rsplit(":", 1)[1])))
    if verbose or len(locs) == 1:
        return ", ".join(locs)
    return f"{locs[0]} (+{len(locs) - 1} more)"


def lineal(a: Mod, b: Mod) -> bool:
    """True when one module is the other's ancestor (parent, grandparent, ...)."""
    return a[: len(b)] == b or b[: len(a)] == a


@dataclass
class Options:
    report: bool = False  # print the graph and the longest files even when passing
    verbose: bool = False  # every file:line of an edge, not the first one
    allow_parent_child: bool = False  # file level: ignore edges between ancestors and descendants
    wiring_only: tuple[str, ...] = ()  # top-level modules nothing but the wiring may depend on


def print_cycle(comp: list[Mod], graph: Graph, verbose: bool, out) -> str:
    cycle = shortest_cycle(comp, graph)
    arrow = " -> ".join(name(m) for m in cycle)
    print(f"    CYCLE among {{{', '.join(name(m) for m in comp)}}}", file=out)
    print(f"      shortest: {arrow}", file=out)
    for a, b in zip(cycle, cycle[1:]):
        print(f"        {name(a)} -> {name(b)}: {where(graph[a][b], verbose)}", file=out)
    inner = [(a, b) for a in comp for b in sorted(graph.get(a, {})) if b in comp]
    if len(inner) > len(cycle) - 1:
        print("      every edge inside the component (cut enough of them to break it):", file=out)
        for a, b in inner:
            print(f"        {name(a)} -> {name(b)}: {where(graph[a][b], verbose)}", file=out)
    return arrow


def check_layering(crate: Crate, opts: Options, out) -> list[str]:
    """Prints the cycles (and with `report` the graph); returns one line per problem found."""
    failures: list[str] = []
    label_root = Path(os.path.relpath(crate.root)).as_posix()
    top = top_level(crate)
    file_graph = without_wiring(crate.edges, crate.wiring)
    if opts.allow_parent_child:
        file_graph = {
            a: {b: e for b, e in d.items() if not lineal(a, b)} for a, d in file_graph.items()
        }
    top_nodes = {m[:1] for m in crate.files if m}
    levels = [
        ("top-level modules", without_wiring(top, crate.wiring), top_nodes),
        ("files", file_graph, {m for m in crate.files if m}),
    ]
    for label, graph, nodes in levels:
        comps = sccs(nodes, graph)
        n_edges = sum(len(d) for d in graph.values())
        status = "ok" if not comps else f"{len(comps)} cycle(s)"
        print(f"  {label}: {len(nodes)} modules, {n_edges} edges: {status}", file=out)
        for comp in comps:
            failures.append(f"{label_root} {label}: {print_cycle(comp, graph, opts.verbose, out)}")
    wiring_top = {w[:1] for w in crate.wiring}
    for only in opts.wiring_only:
        users = [src for src in sorted(top) if (only,) in top[src] and src not in wiring_top]
        status = "ok" if not users else f"{len(users)} other module(s) depend on it"
        print(f"  only the wiring depends on `{only}`: {status}", file=out)
        for src in users:
            print(f"    {name(src)} -> {only}: {where(top[src][(only,)], opts.verbose)}", file=out)
            failures.append(
                f"{label_root}: {name(src)} depends on `{only}`, which only the wiring may use"
            )
    if opts.report:
        print("  top-level graph:", file=out)
        graph = levels[0][1]
        for src in sorted(top_nodes):
            dsts = ", ".join(name(d) for d in sorted(graph.get(src, {}))) or "(nothing)"
            wired = " (wiring: outgoing edges not checked)" if src in wiring_top else ""
            print(f"    {name(src)} -> {dsts}{wired}", file=out)
        if crate.wiring:
            users = {
                s for s, dsts in crate.edges.items()
                for d in dsts if d in crate.wiring and s not in crate.wiring
            }
            wiring = ", ".join(name(w) for w in sorted(crate.wiring))
            users_list = ", ".join(name(u) for u in sorted(users)) or "(none)"
            print(f"    modules that depend on the wiring ({wiring}): {users_list}", file=out)
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
        paths = rust_files(src)
        parsed = {p: parse_source(p.read_text(encoding="utf-8")) for p in paths}
        test_files = test_only_files(parsed)
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
    summary = f"over {MAX_LINES} lines: {len(over) or 'none'}"
    print(f"  {len(sizes)} non-test source files; {summary}", file=out)
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


def run(root: Path, crates: list[str], wiring: list[str], opts: Options, out) -> int:
    failures: list[str] = []
    for crate_dir in crates:
        src = root / crate_dir
        if not src.is_dir():
            print(f"check-modules: no such directory: {src}", file=sys.stderr)
            return 2
        print(f"module layering: {crate_dir}", file=out)
        crate = load_crate(src, [root / w for w in wiring if w != "none"])
        failures += check_layering(crate, opts, out)
    print("file size:", file=out)
    failures += check_sizes(root, opts.report, out)
    if failures:
        print(f"\ncheck-modules: FAILED ({len(failures)} problem(s)):", file=out)
        for f in failures:
            print(f"  {f}", file=out)
        return 1
    print("\ncheck-modules: ok", file=out)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--report", action="store_true",
                    help="print the module graph and the ten longest files")
    ap.add_argument("--verbose", action="store_true", help="print every file:line of each edge")
    ap.add_argument("--crate", dest="crates", action="append", metavar="DIR",
                    help=f"src directory whose modules are checked "
                         f"(repeatable; default {DEFAULT_CRATES})")
    ap.add_argument("--all-crates", action="store_true", help=f"check {ALL_CRATES}")
    ap.add_argument("--wiring", action="append", metavar="PATH",
                    help=f"file whose outgoing edges are not checked "
                         f"(default {DEFAULT_WIRING}; 'none')")
    ap.add_argument("--allow-parent-child", action="store_true",
                    help="file level: ignore edges between a module and its ancestors")
    ap.add_argument("--wiring-only", action="append", default=[], metavar="MODULE",
                    help="fail if a top-level module other than the wiring depends on MODULE "
                         "(repeatable; e.g. cluster)")
    ap.add_argument("--selftest", action="store_true", help="check the checker on a fake crate")
    args = ap.parse_args()
    if args.selftest:
        from check_modules_selftest import selftest  # beside this file, like check_modules_lex

        return selftest(sys.modules[__name__])
    crates = ALL_CRATES if args.all_crates else (args.crates or DEFAULT_CRATES)
    opts = Options(args.report, args.verbose, args.allow_parent_child, tuple(args.wiring_only))
    return run(Path.cwd(), crates, args.wiring or DEFAULT_WIRING, opts, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
