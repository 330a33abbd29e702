#!/usr/bin/env python3
"""Summarise a benches/compare/run.sh run: reads bench-data/compare/{eddy,vw,river}.times,
eddy-summary.json, vw-preds.txt + compare.vw.y and river.json; prints a markdown table and
writes results.json next to them.

    python3 benches/compare/report.py --data bench-data/compare --events N
"""
import argparse
import json
import platform
import statistics


def times(path):
    rows = [line.split() for line in open(path) if line.strip()]
    walls = [float(r[0]) for r in rows]
    rss = max(int(r[1]) for r in rows) if rows and len(rows[0]) > 1 else 0
    cpu = statistics.median(float(r[2]) for r in rows) if rows and len(rows[0]) > 2 else 0.0
    return walls, (rss, cpu)


def vw_accuracy(preds_path, y_path):
    n = correct = 0
    with open(preds_path) as p, open(y_path) as ys:
        for pred, y in zip(p, ys):
            y = y.strip()
            if not y:
                continue
            prob = float(pred.split()[0])
            n += 1
            correct += (prob > 0.5) == (y == "1")
    return correct / n, n


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench-data/compare")
    ap.add_argument("--events", type=int, required=True)
    a = ap.parse_args()
    d, n = a.data, a.events

    rows = []
    walls, rss = times(f"{d}/eddy.times")
    s = json.load(open(f"{d}/eddy-summary.json"))
    eddy_wall = statistics.median(walls)
    rows.append({
        "tool": "eddy run (replay.toml, sgd 0.01, labels 500 events late)",
        "events": n, "wall": eddy_wall, "walls": walls, "rss_mib": rss[0] / 1024, "cpu_s": rss[1],
        "accuracy": s["metrics"]["champion"]["accuracy"],
        "note": f"summary: elapsed_seconds {s.get('elapsed_seconds'):.3f}, "
                f"events_per_second {s.get('events_per_second'):.0f}",
    })

    walls, rss = times(f"{d}/vw.times")
    acc, labelled = vw_accuracy(f"{d}/vw-preds.txt", f"{d}/compare.vw.y")
    rows.append({
        "tool": "Vowpal Wabbit (python -m vowpalwabbit, logistic, immediate labels)",
        "events": n, "wall": statistics.median(walls), "walls": walls, "rss_mib": rss[0] / 1024, "cpu_s": rss[1],
        "accuracy": acc, "note": f"progressive accuracy over {labelled} labelled examples",
    })

    walls, rss = times(f"{d}/river.times")
    r = json.load(open(f"{d}/river.json"))
    measured = walls[0]
    if r["events"] < n:
        # Start-up (interpreter, imports) counted once; reading, joining, learning, evaluating
        # scaled linearly from the prefix to N events.
        wall = measured - r["work_seconds"] + r["work_seconds"] * n / r["events"]
        label = f"River 0.26.1 (StandardScaler \\| LogisticRegression, delay {r['delay']}) — EXTRAPOLATED"
        note = (f"measured {measured:.2f} s on the first {r['events']} events, "
                f"extrapolated linearly to {n}")
    else:
        wall, label, note = measured, f"River 0.26.1 (StandardScaler \\| LogisticRegression, delay {r['delay']})", "measured"
    rows.append({
        "tool": label, "events": r["events"], "wall": wall, "walls": walls, "rss_mib": rss[0] / 1024, "cpu_s": rss[1],
        "accuracy": r["accuracy"], "note": note + f"; accuracy over {r['labelled']} events",
    })

    print(f"\nmachine: {cpu_model()}, stream: {n} events, 10-feature rotating hyperplane\n")
    print("| tool | wall s (whole process, median) | min wall s | events/s | accuracy | wall vs eddy | CPU s (user+sys) | max RSS MiB | note |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(f"| {row['tool']} | {row['wall']:.2f} | {min(row['walls']):.2f} | {n / row['wall']:,.0f} | {row['accuracy']:.4f} | "
              f"{row['wall'] / eddy_wall:.1f}× | {row['cpu_s']:.2f} | {row['rss_mib']:.0f} | {row['note']} |")
    best = min(rows[1]["walls"]) / min(rows[0]["walls"])
    print(f"\nVW / eddy on the fastest run of each: {best:.2f}×")
    print("wall times of each repeat: " + "; ".join(
        f"{row['tool'].split(' ')[0]} {', '.join(f'{w:.2f}' for w in row['walls'])}" for row in rows))
    json.dump({"events": n, "machine": cpu_model(), "rows": rows}, open(f"{d}/results.json", "w"), indent=2)


if __name__ == "__main__":
    main()
