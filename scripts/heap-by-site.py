#!/usr/bin/env python3
"""Usage: heap-by-site.py STACKS_FILE N [TOP]

Per-connection steady-state heap by the innermost broker frame, from a heaptrack
flame-graph file of cost type `leaked` (broker SIGKILLed while holding N idle connections)."""
import collections, re, sys
path, n = sys.argv[1], int(sys.argv[2])
agg = collections.Counter()
for line in open(path):
    stack, _, count = line.rstrip().rpartition(' ')
    frames = [re.sub(r'::h[0-9a-f]{16}', '', f) for f in stack.split(';')]
    ours = [f for f in frames if re.search(r'stompbox::|stomp_codec::|chat_store::', f)]
    agg[(ours[-1] if ours else '?')[:100]] += int(count)
total = sum(agg.values())
print(f'total {total} B = {total / n:.0f} B/connection')
for k, v in agg.most_common(int(sys.argv[3]) if len(sys.argv) > 3 else 15):
    print(f'{v / n:7.0f} B/conn  {k}')
