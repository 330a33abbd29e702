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
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression()
    pending = collections.deque()
    n = seen = correct = 0
    with open(a.events) as events, open(a.labels) as label_lines:
        # Streaming join by id: labels are read on demand until the current event's label has
        # been seen (labels come in event order, some events late), so memory stays small and
        # a --limit prefix costs only its own share of the reading.
        labels = {}
        labels_left = True
        for line in events:
            if not line.strip():
                continue
            e = json.loads(line)
            key = e["id"]
            while labels_left and key not in labels:
                lab = label_lines.readline()
                if not lab:
                    labels_left = False
                elif lab.strip():
                    r = json.loads(lab)
                    labels[r["id"]] = bool(r["label"])
            y = labels.pop(key, None)
            x = {k: v for k, v in e.items() if k != "id" and k != "ts"}
            p = model.predict_proba_one(x).get(True, 0.0)
            seen += 1
            if y is not None:
                n += 1
                correct += (p >= 0.5) == y
                pending.append((x, y))
            while len(pending) > a.delay:
                model.learn_one(*pending.popleft())
            if a.limit and seen >= a.limit:
                break
    t_end = time.perf_counter()
    result = {
        "tool": "river",
        "events": seen,
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
