#!/usr/bin/env python3
"""Per-request instruction counts from an uncompressed callgrind file.

    bench/callgrind.py FILE REQUESTS [TOP]

Prints the total instructions per request, then the TOP functions by self
cost (instructions spent in the function itself) and by inclusive cost
(with what they call), both per request. Written for the files
bench/instructions.sh makes (--compress-strings=no --compress-pos=no).
"""

import collections
import sys


def parse(path):
    """Self cost per function, and the inclusive cost of each call edge."""
    own = collections.Counter()
    edges = collections.Counter()
    fn = callee = None
    in_call = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("fn="):
                fn = line[3:].strip()
            elif line.startswith("cfn="):
                callee = line[4:].strip()
            elif line.startswith("calls="):
                in_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                fields = line.split()
                if len(fields) < 2:
                    continue
                cost = int(fields[1])
                if in_call:
                    # The line after calls= is the call's inclusive cost.
                    if callee != fn:
                        edges[(fn, callee)] += cost
                    in_call = False
                else:
                    own[fn] += cost
    return own, edges


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__.strip().splitlines()[2].strip())
    path, requests = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) == 4 else 25
    own, edges = parse(path)
    inclusive = collections.Counter(own)
    for (caller, _), cost in edges.items():
        inclusive[caller] += cost
    total = sum(own.values())
    print(f"instructions per request: {total / requests:.0f}")
    for title, counts in (("self", own), ("inclusive", inclusive)):
        print(f"-- top {top} by {title} cost, instructions per request")
        for name, cost in counts.most_common(top):
            print(f"{cost / requests:9.0f}  {name[:150]}")


if __name__ == "__main__":
    main()
