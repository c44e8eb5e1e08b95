# Every citation of docs/PROTOCOL.md in the sources, tests and docs names
# sections that exist there (e.g. "docs/PROTOCOL.md 1.2–1.5, 7.10").
# reactor: none
set -eu
. "$(dirname "$0")/lib.sh"
[ -f docs/PROTOCOL.md ] || fail "docs/PROTOCOL.md is missing"
git rev-parse --is-inside-work-tree >/dev/null 2>&1 || skip "not a git work tree (the sources are listed with git)"
git ls-files -z | xargs -0 grep -I -o -E 'PROTOCOL\.md( sections?)?[ \n]*[0-9][0-9.,–and -]*' 2>/dev/null \
    | python3 -c '
import re, sys
heads = set()
for line in open("docs/PROTOCOL.md", encoding="utf-8"):
    m = re.match(r"#{2,3} (\d+(?:\.\d+)?)[. ]", line)
    if m:
        heads.add(m.group(1))
bad, n = [], 0
for line in sys.stdin:
    where, _, cite = line.rstrip("\n").partition(":")
    for num in re.findall(r"\d+(?:\.\d+)?", cite.split("PROTOCOL.md", 1)[1]):
        n += 1
        if num not in heads:
            bad.append("%s cites section %s" % (where, num))
if bad:
    sys.exit("no such section in docs/PROTOCOL.md:\n  " + "\n  ".join(bad))
if n < 20:
    sys.exit("only %d citations found: the search is broken" % n)
print("%d citations, all found" % n)
'
