#!/usr/bin/env python3
"""Where one stream's CPU goes, thread by thread: the gateway answers the 10M-row scan once
(plain or zstd) and the CPU seconds each of its threads spent meanwhile are read from
/proc/PID/task/*/stat. Shows which stage bounds a single stream (one stream's zstd is
sequential: it runs on one worker at a time).

    ~/.cache/duckstream-bench/.venv/bin/python scripts/bench/bench_threads.py BINARY [zstd|identity] [GATEWAY FLAGS...]
"""
import os
import sys

from benchlib import gateway, timed_query


def cpu(pid):
    out = {}
    tick = os.sysconf("SC_CLK_TCK")
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        out[t] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def main():
    binary = sys.argv[1]
    encoding = sys.argv[2] if len(sys.argv) > 2 else "zstd"
    extra = sys.argv[3:]  # more gateway flags
    with gateway(binary, "/tmp/bench/bench.duckdb", extra=extra) as (port, pid):
        before = cpu(pid)
        wall = timed_query(port, "SELECT * FROM parcels", zstd=encoding == "zstd")
        after = cpu(pid)
    spent = sorted(((after[k][1] - before.get(k, ("", 0))[1], after[k][0]) for k in after), reverse=True)
    total = sum(s for s, _ in spent)
    print(f"{encoding}: wall {wall:.2f} s, gateway CPU {total:.2f} s ({total / wall:.2f} cores)")
    for s, name in spent:
        if s >= 0.05:
            print(f"  {s:6.2f} s  {name}")


if __name__ == "__main__":
    main()
