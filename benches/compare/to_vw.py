#!/usr/bin/env python3
"""Convert an `eddy generate --format jsonl` pair (events.jsonl + labels.jsonl) to Vowpal
Wabbit's text format, in event order.

    python3 benches/compare/to_vw.py EVENTS.jsonl LABELS.jsonl OUT.vw

Each event becomes `LABEL |f x0:v0 x1:v1 ...` with LABEL = 1 for label 1 and -1 for label 0
(VW's logistic loss wants -1/1); every field but `id` and `ts` is a feature. An event without a
label is written without one (VW then predicts but does not learn). The 0/1 labels are also
written one per line, aligned with OUT.vw, to OUT.vw + ".y" (empty line = no label), so that
accuracy can be computed from VW's predictions file. Not timed by run.sh.
"""
import json
import sys


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    events_path, labels_path, out_path = sys.argv[1:]
    labels = {}
    with open(labels_path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                labels[r["id"]] = int(r["label"])
    n = missing = 0
    with open(events_path) as f, open(out_path, "w") as out, open(out_path + ".y", "w") as ys:
        for line in f:
            if not line.strip():
                continue
            r = json.loads(line)
            y = labels.get(r["id"])
            feats = " ".join(f"{k}:{v!r}" for k, v in r.items() if k not in ("id", "ts"))
            if y is None:
                missing += 1
                out.write(f"|f {feats}\n")
                ys.write("\n")
            else:
                out.write(f"{1 if y == 1 else -1} |f {feats}\n")
                ys.write(f"{y}\n")
            n += 1
    print(f"to_vw: wrote {n} examples ({missing} without a label) to {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
