"""A bench worker that dies after sending its first two requests (spawned by tests)."""

from __future__ import annotations

import os
from typing import Any

from rigscope.bench import workers


def dying_worker(config: Any, spec: Any, seed: int, shard: Any, out: Any) -> None:
    if shard.part != 1:
        workers._worker(config, spec, seed, shard, out)
        return
    sent = 0

    class Dying:
        def put(self, item: tuple[Any, ...]) -> None:
            nonlocal sent
            out.put(item)
            if item[0] == "sent":
                sent += 1
                if sent == 2:
                    import time

                    time.sleep(0.05)  # both requests are on the wire
                    os._exit(1)

    workers._worker(config, spec, seed, shard, Dying())
