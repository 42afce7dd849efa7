"""One hop of ``vigil bench``'s ceiling: a plain redis-py relay, deliberately light to import.

``python -m vigil_shared.bench_relay URL SRC DST N COUNT``: read batches of up to ``COUNT`` entries
from ``SRC`` with ``XREADGROUP``, write them to ``DST`` and acknowledge them in one pipeline, until
``N`` entries have been relayed. Sets ``<SRC>:ready`` once connected so the timing starts after
the interpreter's start-up.
"""

from __future__ import annotations

import sys
from typing import Any

import redis

GROUP = "relay"


def relay(url: str, src: str, dst: str, n: int, count: int) -> None:
    r = redis.Redis.from_url(url)
    r.set(f"{src}:ready", 1)
    done = 0
    while done < n:
        resp: Any = r.xreadgroup(GROUP, "relay-1", {src: ">"}, count=count, block=200)
        if not resp:
            continue
        _, entries = resp[0]
        pipe = r.pipeline(transaction=False)
        for _entry_id, fields in entries:
            pipe.xadd(dst, fields)
        pipe.xack(src, GROUP, *[e[0] for e in entries])
        pipe.execute()
        done += len(entries)
    r.close()


if __name__ == "__main__":
    if len(sys.argv) != 6:
        raise SystemExit("usage: python -m vigil_shared.bench_relay URL SRC DST N COUNT")
    relay(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
