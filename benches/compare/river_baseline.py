#!/usr/bin/env python3
"""River baseline on an `eddy generate` JSON-lines pair: StandardScaler | LogisticRegression,
prequential (predict each event, then learn it), reading lines with the standard json module.

    python3 benches/compare/river_baseline.py EVENTS.jsonl LABELS.jsonl [--limit N] [--delay D] [--out R.json]

--limit N   only the first N events (the labels for them are read up to the last one needed);
--delay D   learn event i only after event i+D has been predicted (D=500 mimics eddy's replay of
            `eddy generate` data, whose labels arrive 5 s = 500 events later); 0 (default) learns
            each label immediately, as Vowpal Wabbit does.

Prints and optionally writes a JSON object: events, accuracy, work_seconds (reading, joining,
learning, evaluating), import_seconds (importing river).
"""
import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

try:
    from river import linear_model, preprocessing
except ImportError:  # pragma: no cover
    import subprocess

    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "river==0.26.1"])
    from river import linear_model, preprocessing

T_IMPORTED = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("events")
    ap.add_argument("labels")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--delay", type=int, default=0)
    ap.add_argument("--out")
    a = ap.parse_args()

    t_work = time.perf_counter()
    # Read the events (all, or the first --limit) and join their labels by id.
    events = []
    with open(a.events) as f:
        for line in f:
            if line.strip():
                events.append(json.loads(line))
                if a.limit and len(events) >= a.limit:
                    break
    wanted = {e["id"] for e in events}
    labels = {}
    with open(a.labels) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                if r["id"] in wanted:
                    labels[r["id"]] = bool(r["label"])
                    if len(labels) == len(wanted):
                        break

    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    pending = collections.deque()
    n = correct = 0
    for e in events:
        y = labels.get(e["id"])
        x = {k: v for k, v in e.items() if k != "id" and k != "ts"}
        p = model.predict_proba_one(x).get(True, 0.0)
        if y is not None:
            n += 1
            correct += (p >= 0.5) == y
            pending.append((x, y))
        while len(pending) > a.delay:
            model.learn_one(*pending.popleft())
    t_end = time.perf_counter()
    result = {
        "tool": "river",
        "events": len(events),
        "labelled": n,
        "delay": a.delay,
        "accuracy": correct / n if n else None,
        "import_seconds": T_IMPORTED - T0,
        "work_seconds": t_end - t_work,
    }
    print(json.dumps(result))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main()
