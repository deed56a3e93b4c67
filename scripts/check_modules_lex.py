"""Rust source lexing for scripts/check-modules.py: blank comments, string/char literals and
`#[cfg(test)]` items, keeping every line break so offsets still map to line numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

RAW_STRING = re.compile(r'(?:br|cr|r)(#*)"')
CFG_TEST = re.compile(r"#\[\s*cfg\s*\(\s*test\s*\)\s*\]")
ATTRIBUTE = re.compile(r"\s*#!?\[")


def blank(text: str) -> str:
    """`text` with every character but line breaks turned into a space."""
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
            out.append(blank(src[i:j]))
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
            out.append(blank(src[i:j]))
            i = j
        elif c in "brc" and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")) and (
            m := RAW_STRING.match(src, i)
        ):
            end = src.find('"' + m.group(1), m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(blank(src[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            j = min(j + 1, n)
            out.append('"' + blank(src[i + 1 : j - 1]) + '"')
            i = j
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime / label ('a, 'outer:).
            if i + 1 < n and src[i + 1] == "\\":
                j = i + 2
                while j < n and src[j] != "'":
                    j += 2 if src[j] == "\\" else 1
                j = min(j + 1, n)
                out.append(blank(src[i:j]))
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
