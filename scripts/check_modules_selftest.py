"""Self-test of scripts/check-modules.py: builds a fake crate with known cycles, non-cycles
(comments, strings, re-exports, test code, the wiring) and file sizes, and asserts the checker
sees exactly those, so the check cannot pass by finding nothing.

Run as `python3 scripts/check-modules.py --selftest` (it imports this file).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from types import ModuleType

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


def selftest(cm: ModuleType) -> int:
    """0 when `cm` (the check-modules module) finds what the fake crate holds, else 1."""
    tmp = Path(tempfile.mkdtemp(prefix="check-modules-"))
    try:
        for rel, text in SELFTEST_FILES.items():
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        lib = tmp / "fake/src/lib.rs"
        lib.write_text(lib.read_text() + "pub mod p;\nmod big;\n")
        crate = cm.load_crate(tmp / "fake/src", [tmp / "fake/src/wiring.rs"])
        problems: list[str] = []

        def expect(ok: bool, what: str) -> None:
            if not ok:
                problems.append(what)

        edges = {(cm.name(a), cm.name(b)) for a, dsts in crate.edges.items() for b in dsts}
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
        top = cm.sccs({m[:1] for m in crate.files if m}, cm.without_wiring(cm.top_level(crate), crate.wiring))
        expect([[("a",), ("b",), ("c",)]] == top, f"top-level cycle a-b-c only, got {top}")
        files = cm.sccs({m for m in crate.files if m}, cm.without_wiring(crate.edges, crate.wiring))
        expect([("p",), ("p", "q")] in files, f"file cycle p <-> p::q, got {files}")
        expect([("a",), ("b",), ("c",)] in files, f"file cycle a-b-c, got {files}")
        expect(len(files) == 2, f"exactly two file-level cycles, got {files}")
        sizes = dict((p, n) for n, p in cm.source_sizes(tmp))
        expect(sizes.get("fake/src/big.rs") == 601, f"big.rs counted 601, got {sizes.get('fake/src/big.rs')}")
        expect(sizes.get("fake/src/e.rs", 999) <= 600, f"e.rs without test items <= 600, got {sizes.get('fake/src/e.rs')}")
        expect("fake/src/e/tests.rs" not in sizes, "test-only file not counted")
        null = open(os.devnull, "w")
        wiring = ["fake/src/wiring.rs"]
        expect(cm.run(tmp, ["fake/src"], wiring, cm.Options(), null) == 1, "run() fails on the fake crate")
        crate_only = cm.load_crate(tmp / "fake/src", [tmp / w for w in wiring])
        d_only = cm.check_layering(crate_only, cm.Options(wiring_only=("d",)), null)
        expect(not any("`d`" in f for f in d_only), f"only the wiring uses d, got {d_only}")
        b_only = cm.check_layering(crate_only, cm.Options(wiring_only=("b",)), null)
        expect(any(f.endswith("a depends on `b`, which only the wiring may use") for f in b_only),
               f"a -> b breaks --wiring-only b, got {b_only}")
        if problems:
            print("check-modules selftest FAILED:")
            for p in problems:
                print(f"  {p}")
            return 1
        print("check-modules selftest: ok (cycles, parent/child, wiring, test code, sizes)")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


