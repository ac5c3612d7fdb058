"""Regenerate _toc.yml and intro.md's map of the seven parts from the planned chapters.

The plan below is the book's table of contents. A chapter appears in _toc.yml, and as a
link in intro.md's map, once its notebook exists; until then the map names it in plain
text (never a link to a missing page). Run after adding a chapter:

    python tools/book_map.py
"""

import os

PARTS = [
    (
        "Part 1: Queues, pools and concurrency",
        [
            ("connection-pools", "sizing a connection pool"),
            ("c10k", "C10K, C10M and the cost of a connection"),
            ("gc-pauses", "when the garbage collector stops the world"),
        ],
    ),
    (
        "Part 2: Storage engines",
        [
            ("lsm-trees", "LSM trees and Bloom filters"),
            ("btree-ids", "B-tree page splits and the primary key you choose"),
            ("index-bloat", "when the index outgrows the data"),
        ],
    ),
    (
        "Part 3: Relational databases under load",
        [
            ("auto-increment-overflow", "the day AUTO_INCREMENT ran out"),
            ("foreign-keys-at-scale", "foreign keys, cascades and the database as the bottleneck"),
            ("soft-delete", "DELETE vs soft delete"),
            ("sargable-queries", "queries that can't use their index"),
        ],
    ),
    (
        "Part 4: Caching",
        [
            ("cache-stack", "the cache stack, from L1 to the CDN"),
            ("redis-ttl", "how Redis actually expires keys"),
        ],
    ),
    (
        "Part 5: Connections",
        [
            ("graceful-shutdown", "graceful shutdown"),
            ("websocket-vs-rest", "why Slack sends messages over HTTPS"),
            ("keepalive-heartbeats", "keep-alive is three different things"),
        ],
    ),
    (
        "Part 6: Traffic at scale",
        [
            ("l4-vs-l7", "L4 vs L7 load balancing"),
            ("autoscaling", "why the autoscaler is late"),
            ("reconnect-storms", "the config change that took down a fleet"),
        ],
    ),
    (
        "Part 7: Distributed data",
        [
            ("exactly-once", "the exactly-once lie"),
            ("consistent-hashing", "consistent hashing and its hotspots"),
            ("fan-out", "fan-out on write vs fan-out on read"),
            ("access-control-at-scale", "filtering by 100,000 devices"),
            ("similarity-search", "similarity search beyond brute force"),
        ],
    ),
]
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def exists(slug: str) -> bool:
    return os.path.exists(f"{root}/chapters/{slug}.ipynb")


toc = [
    "# Order and numbering live here only; file names are slugs, so renumbering never breaks a URL.",
    "# List a chapter only once its notebook exists and meets CHAPTER.md's definition of done.",
    "format: jb-book",
    "root: intro",
    "parts:",
]
for caption, chapters in PARTS:
    present = [s for s, _ in chapters if exists(s)]
    if not present:
        continue
    toc += [f'  - caption: "{caption}"', "    numbered: true", "    chapters:"] + [
        f"      - file: chapters/{s}" for s in present
    ]
toc += [
    '  - caption: "Reference"',
    "    chapters:",
    "      - file: failure-modes",
    "      - file: glossary",
    "      - file: build-report",
]
open(f"{root}/_toc.yml", "w").write("\n".join(toc) + "\n")
lines = []
for i, (caption, chapters) in enumerate(PARTS, 1):
    name = caption.split(": ", 1)[1]
    lines.append(f"**Part {i}. {name[0].upper() + name[1:]}.**")
    items = ["{doc}`chapters/" + s + "`" if exists(s) else t[0].upper() + t[1:] for s, t in chapters]
    for j, item in enumerate(items):
        lines.append(item + (";" if j < len(items) - 1 else "."))
    lines.append("")
intro = open(f"{root}/intro.md").read()
start = intro.index("**Part 1.")
end = intro.index("## How the book is built")
intro = intro[:start] + "\n".join(lines) + "\n" + intro[end:]
open(f"{root}/intro.md", "w").write(intro)
