"""A task that prints RATE lines per second for SECONDS seconds (benchmark load)."""

import sys
import time

rate, seconds = int(sys.argv[1]), int(sys.argv[2])
start = time.time()
chunk = rate // 100
for tick in range(seconds * 100):
    sys.stdout.write("".join(f"line {tick} {j} some progress text here\n" for j in range(chunk)))
    sys.stdout.flush()
    time.sleep(max(0.0, start + (tick + 1) / 100 - time.time()))
