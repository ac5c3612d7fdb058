"""Close BibTeX entries that a line-based union merge left without their final brace.

references.bib is merged from parallel branches with ``merge=union`` (.gitattributes):
git keeps both sides' added lines, and when two branches append entries at the end of
the file, the single closing ``}`` line they share can be kept only once. This script
splits the file at every line starting with ``@``, and closes each entry whose braces
do not balance, before any comment lines that trail it.

    python tools/repair_bib.py references.bib

tests/test_hygiene.py parses the file with pybtex, so a broken merge cannot land.
"""

from __future__ import annotations

import sys
from pathlib import Path


def repaired(text: str) -> tuple[str, int]:
    """``text`` with unbalanced entries closed, and how many were closed."""
    chunks: list[list[str]] = [[]]
    for line in text.splitlines():
        if line.startswith("@"):
            chunks.append([])
        chunks[-1].append(line)
    closed = 0
    out: list[str] = []
    for chunk in chunks:
        body = [line for line in chunk if not line.lstrip().startswith("%")]
        depth = sum(line.count("{") - line.count("}") for line in body)
        if chunk and chunk[0].startswith("@") and depth > 0:
            # Put the missing braces after the last line that belongs to the entry.
            end = len(chunk)
            while end > 1 and (not chunk[end - 1].strip() or chunk[end - 1].lstrip().startswith("%")):
                end -= 1
            chunk = chunk[:end] + ["}" * depth, ""] + chunk[end:]
            closed += 1
        out.extend(chunk)
    return "\n".join(out).rstrip("\n") + "\n", closed


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else "references.bib")
    text, closed = repaired(path.read_text())
    path.write_text(text)
    print(f"closed {closed} entries in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
