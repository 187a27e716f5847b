"""A real (if small) fleet for the executor's tests: each target is a version file in a directory,
changed and read by this script, which the command adapter runs as a separate process.

    executor_fleet.py DIR deploy TARGET VERSION [SLEEP_S]   put TARGET on VERSION (after SLEEP_S)
    executor_fleet.py DIR current TARGET                    print TARGET's version
    executor_fleet.py DIR health TARGET                     exit 1 if TARGET's version names "sick"
    executor_fleet.py DIR metrics METRIC START END PERIOD TARGETS
        print a JSON list, one value per period: `error_rate` is 1.0 in a period whose end finds a
        target on a version whose name contains "bad", else 0.0; `requests` is 100 per target per
        period; other metrics 0.0.

Faults on demand: a file `DIR/fail-TARGET` makes deploys of TARGET exit 1; `DIR/hang-TARGET`
makes them hang; `DIR/fail-once-TARGET-VERSION` makes the next deploy of TARGET to VERSION exit 1
(and is removed). Every deploy appends "time target version" to `DIR/history` (atomic writes).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path


def _history(root: Path) -> list[tuple[float, str, str]]:
    path = root / "history"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        t, target, version = line.split("\t")
        out.append((float(t), target, version))
    return out


def main(argv: list[str]) -> int:
    root, action = Path(argv[0]), argv[1]
    if action == "deploy":
        target, version = argv[2], argv[3]
        if (root / f"fail-{target}").exists():
            print(f"cannot deploy {target}: injected failure", file=sys.stderr)
            return 1
        once = root / f"fail-once-{target}-{version}"
        if once.exists():
            once.unlink()
            print(f"cannot deploy {target} to {version}: injected failure (once)", file=sys.stderr)
            return 1
        if (root / f"hang-{target}").exists():
            time.sleep(3600)
        if len(argv) > 4:
            time.sleep(float(argv[4]))
        tmp = root / f".{target}.tmp{os.getpid()}"
        tmp.write_text(version + "\n")
        os.replace(tmp, root / f"{target}.version")
        with open(root / "history", "a") as handle:
            handle.write(f"{time.time()}\t{target}\t{version}\n")
        print(f"{target} now runs {version}")
        return 0
    if action == "current":
        path = root / f"{argv[2]}.version"
        if not path.exists():
            print(f"unknown target {argv[2]}", file=sys.stderr)
            return 1
        print(path.read_text().strip())
        return 0
    if action == "health":
        version = (root / f"{argv[2]}.version").read_text().strip()
        print(f"{argv[2]} runs {version}: {'sick' if 'sick' in version else 'healthy'}")
        return 1 if "sick" in version else 0
    if action == "metrics":
        metric, start, end, period, targets = argv[2], float(argv[3]), float(argv[4]), float(argv[5]), argv[6]
        names = set(targets.split(",")) if targets else set()
        n = int(math.floor((end - start) / period + 1e-9))
        history = [h for h in _history(root) if h[1] in names]
        values = []
        for k in range(n):
            period_end = start + (k + 1) * period
            if metric == "requests":
                values.append(100.0 * len(names))
            elif metric == "error_rate":
                running: dict[str, str] = {}
                for t, target, version in history:
                    if t < period_end:
                        running[target] = version
                values.append(1.0 if any("bad" in v for v in running.values()) else 0.0)
            else:
                values.append(0.0)
        print(json.dumps(values))
        return 0
    print(f"unknown action {action}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
