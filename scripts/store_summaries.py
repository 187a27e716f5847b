"""Store the exact summary figures of the shipped scenarios, for tests/test_stored_summaries.py.

    python scripts/store_summaries.py            # rewrite tests/data/stored_summaries.json
    python scripts/store_summaries.py --check    # compare with the stored file; exit 1 on a difference

Each case is one 30-day month on seed 1 of a shipped scenario (aws-typical, startup-fast,
no-safety) and of benchmarks/reference.yaml. For each it keeps `result.summary()` and SHA-256
digests of the run's changes frame and of its SLA failed requests per region and period, so a
change that leaves the headline figures alone but moves a single draw still shows. Floats are
written by `json` (shortest repr, which reads back to the same double), so the comparison is exact.

Regenerate after a deliberate change to the model (and say so in the commit message); a change
meant only to make the simulator faster must leave the file as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import deploysim  # noqa: E402

STORE = REPO / "tests" / "data" / "stored_summaries.json"
CASES = {  # label -> scenario file, relative to the repository
    "aws-typical": "scenarios/aws-typical.yaml",
    "startup-fast": "scenarios/startup-fast.yaml",
    "no-safety": "scenarios/no-safety.yaml",
    "reference": "benchmarks/reference.yaml",
}
SEED = 1
MONTHS = 1.0


def figures(path: str) -> dict[str, Any]:
    """The stored figures of one case: its summary and digests of its changes and SLA errors."""
    result = deploysim.simulate(deploysim.load_scenario(REPO / path), seed=SEED, months=MONTHS)
    changes_json = result.changes.to_json(orient="split", double_precision=15).encode()
    sla_errors = result.records.sla_errors_per_period.astype("<f8").tobytes()
    out = {
        "summary": result.summary(),
        "changes_sha256": hashlib.sha256(changes_json).hexdigest(),
        "sla_errors_sha256": hashlib.sha256(sla_errors).hexdigest(),
    }
    return json.loads(json.dumps(out))  # as stored: tuples become lists, keys strings


def all_figures() -> dict[str, Any]:
    return {label: figures(path) for label, path in CASES.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the stored file instead of writing it")
    args = parser.parse_args()
    current = {"seed": SEED, "months": MONTHS, "cases": all_figures()}
    text = json.dumps(current, indent=1, sort_keys=True) + "\n"
    if args.check:
        same = STORE.read_text(encoding="utf-8") == text
        print("identical to the stored figures" if same else "DIFFERENT from the stored figures")
        return 0 if same else 1
    STORE.write_text(text, encoding="utf-8")
    print(f"wrote {STORE.relative_to(REPO)} ({len(CASES)} cases, seed {SEED}, {MONTHS:g} month each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
