import sys

p = sys.argv[1]
lines = open(p).read().splitlines()
out = []
depth = 0
fixed = 0
for line in lines:
    starts_entry = line.startswith("@") or line.startswith("%")
    if starts_entry and depth > 0:
        # previous entry never closed: close it before this line
        while out and out[-1].strip() == "":
            out.pop()
        out.append("}" * depth)
        out.append("")
        fixed += 1
        depth = 0
    if not line.lstrip().startswith("%"):
        depth += line.count("{") - line.count("}")
    out.append(line)
if depth > 0:
    out.append("}" * depth)
    fixed += 1
open(p, "w").write("\n".join(out) + "\n")
print("closed", fixed, "entries")
