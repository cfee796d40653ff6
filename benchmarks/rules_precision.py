"""Rule quality on generated traffic: alert rate, precision and recall per rule.

Prints JSON. Generates a few days of every scenario with its injected patterns, scores
it with the batch path (the same rule code as the stream) and compares each rule's hits
with the ground truth. Precision counts a hit as true when the event belongs to any
injected pattern; recall is per rule over the scenario's pattern events.

    python benchmarks/rules_precision.py [--days 3] [--per-hour 2000] [--scenarios all]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict

import pandas as pd

from bankguard.producers.scenarios import generator_class
from bankguard.rules import evaluate_frame
from bankguard.rules.config import load_rules
from bankguard.scenarios import parse_scenarios

START_MS = 1_793_000_000_000
HOUR_MS = 3_600_000


def generated_frame(scenario: str, days: int, per_hour: int, seed: int) -> pd.DataFrame:
    generator = generator_class(scenario)(seed=seed)
    rows = []
    for hour in range(days * 24):
        rows += generator.generate(START_MS + hour * HOUR_MS, START_MS + (hour + 1) * HOUR_MS, per_hour)
    frame = pd.DataFrame([row.event for row in rows])
    frame["t_ms"] = [row.timestamp_ms for row in rows]
    frame["pattern"] = [row.pattern for row in rows]
    return frame


def rule_quality(frame: pd.DataFrame, scenario: str) -> dict:
    _, hits = evaluate_frame(frame, scenario, load_rules())
    patterns = [p if isinstance(p, str) else None for p in frame["pattern"].tolist()]
    fired: dict[str, set[int]] = defaultdict(set)
    for hit in hits:
        fired[hit.rule].add(hit.row)
    positives = sum(p is not None for p in patterns)
    by_pattern = Counter(p for p in patterns if p)
    rules = {}
    for rule, rows in sorted(fired.items()):
        true = sum(patterns[row] is not None for row in rows)
        rules[rule] = {
            "alerts": len(rows),
            "alert_rate": round(len(rows) / len(frame), 5),
            "precision": round(true / len(rows), 3),
            "recall": round(true / positives, 3) if positives else None,
            "patterns_caught": dict(Counter(patterns[row] for row in rows if patterns[row])),
        }
    return {"events": len(frame), "pattern_events": dict(by_pattern),
            "base_rate": round(positives / len(frame), 5), "rules": rules}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--per-hour", type=int, default=2_000)
    parser.add_argument("--scenarios", default="all")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report = {scenario: rule_quality(generated_frame(scenario, args.days, args.per_hour, args.seed), scenario)
              for scenario in parse_scenarios(args.scenarios)}
    print(json.dumps({"benchmark": "rules_precision", "days": args.days, "per_hour": args.per_hour,
                      "scenarios": report}, indent=2))


if __name__ == "__main__":
    main()
