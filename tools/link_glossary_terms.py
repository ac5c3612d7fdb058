"""Link the first mention of glossary terms in each chapter to the glossary ({term} role).

Run after adding a chapter or a glossary term: python tools/link_glossary_terms.py
It edits markdown cells only, skips code, math, headings, fences and existing roles.
"""

import glob
import re
from pathlib import Path

import nbformat

TERMS = {  # regex for the mention -> glossary term
    r"Little's law": "Little's law",
    r"Erlang C": "Erlang C",
    r"Kingman's (?:formula|approximation)": "Kingman's formula",
    r"write amplification": "Write amplification",
    r"Bloom filters?": "Bloom filter",
    r"page splits?": "Page split",
    r"fill ?factor": "Fill factor",
    r"SARGable": "SARGable",
    r"idempotency keys?": "Idempotency key",
    r"transactional outbox": "Transactional outbox",
    r"consistent hashing": "Consistent hashing",
    r"virtual nodes": "Virtual node",
    r"stop-the-world": "Stop-the-world pause",
    r"TCP keep-alive": "TCP keep-alive",
    r"heartbeats?": "Heartbeat",
    r"event loop": "Event loop",
    r"recall@k": "Recall@k",
    r"full jitter": "Jitter",
    r"single-flight": "Single-flight",
    r"Horizontal Pod Autoscaler": "Horizontal Pod Autoscaler",
    r"[Rr]oaring bitmaps?": "Roaring bitmap",
    r"fan-out on write": "Fan-out on write",
    r"MVCC": "MVCC",
}


def safe(line, start):
    before = line[:start]
    return (
        before.count("`") % 2 == 0
        and before.count("$") % 2 == 0
        and not line.lstrip().startswith(("#", ":", "```", "|"))
    )


total = 0
for path in sorted(glob.glob(str(Path(__file__).resolve().parents[1] / "chapters" / "*.ipynb"))):
    nb = nbformat.read(path, as_version=4)
    # Terms this chapter already links stay linked once: running the script again changes nothing.
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    done = {term for term in TERMS.values() if f"<{term}>`" in text}
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "markdown" or cell is nb.cells[0]:
            continue
        lines = cell.source.split("\n")
        fence = False
        for i, line in enumerate(lines):
            if line.strip().startswith(("```", ":::")):
                fence = not fence if line.strip().startswith("```") else fence
                continue
            if fence:
                continue
            for pattern, term in TERMS.items():
                if term in done:
                    continue
                m = re.search(r"(?<![\w`{<])(" + pattern + r")(?![\w`}>])", line)
                if m and safe(line, m.start()) and "{term}" not in line[max(0, m.start() - 8) : m.start()]:
                    text = m.group(1)
                    line = line[: m.start()] + "{term}`" + text + " <" + term + ">`" + line[m.end() :]
                    done.add(term)
                    changed = True
                    total += 1
            lines[i] = line
        cell.source = "\n".join(lines)
    if changed:
        nbformat.write(nb, path)
        print(path.split("/")[-1], sorted(done))
print(total, "links")
