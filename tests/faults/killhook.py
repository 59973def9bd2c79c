"""Kill the current process with SIGKILL at the n-th occurrence of a named point of a run.

Imported only by the fault suite's child processes (``python -c "import killhook; killhook.arm(...)"``);
it wraps library functions from outside, so vpbench itself carries no test hook. Points:

- ``plan``: after a task is checked (preflight), before anything is written;
- ``generate``: before a backend call; ``cache_put``: right after a response is cached;
- ``append``: before a batch of record lines is written (group commit); ``torn``: after half of a
  batch's bytes are written;
- ``replace``: before an atomic file replace (manifest, result, results, sample ids, rewrites).

With n = 0 nothing is killed and the counts are written as JSON to ``$KILLHOOK_COUNTS`` at exit.
"""

from __future__ import annotations

import atexit
import json
import os
import signal

POINTS = ("plan", "generate", "cache_put", "append", "torn", "replace")


def arm(point: str, n: int) -> None:
    import vpbench.api as api
    from vpbench.engine.cache import ResponseCache
    from vpbench.engine.records import RecordWriter, record_to_json
    from vpbench.models.replay import ReplayBackend

    counts = dict.fromkeys(POINTS, 0)

    def hit(name: str) -> None:
        counts[name] += 1
        if name == point and counts[name] == n:
            os.kill(os.getpid(), signal.SIGKILL)

    if n == 0:
        atexit.register(lambda: open(os.environ["KILLHOOK_COUNTS"], "w").write(json.dumps(counts)))

    plan, generate, put, append, replace = (api.check_task, ReplayBackend.generate, ResponseCache.put,
                                            RecordWriter.commit, os.replace)

    def plan_task(*a, **k):
        out = plan(*a, **k)
        hit("plan")
        return out

    def gen(self, batch):
        hit("generate")
        return generate(self, batch)

    def cache_put(self, *a, **k):
        put(self, *a, **k)
        hit("cache_put")

    def rec_commit(self, records):
        records = list(records)
        hit("append")
        if point == "torn" and counts["torn"] + 1 == n:
            data = "".join(record_to_json(r) + "\n" for r in records).encode()
            with open(self.path, "ab") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                os.fsync(f.fileno())
        hit("torn")
        append(self, records)

    def os_replace(src, dst, **k):
        hit("replace")
        replace(src, dst, **k)

    api.check_task = plan_task
    ReplayBackend.generate = gen
    ResponseCache.put = cache_put
    RecordWriter.commit = rec_commit
    os.replace = os_replace
