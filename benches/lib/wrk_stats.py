"""wrk output → one row per run (`parse`), rows → medians and ratios (`summary`).

  wrk_stats.py parse WRK_OUTPUT NAME SIZE       # prints: NAME SIZE req/s p50_ms p99_ms non2xx
  wrk_stats.py summary RESULTS NAME...          # medians per (NAME, SIZE); ratios of every
                                                # contender to the reference, nginx or $REF
                                                # (req/s higher is better, latency lower is better)
"""
import os
import re
import statistics
import sys


def ms(value):
    number, unit = re.match(r"([\d.]+)(us|ms|s)", value).groups()
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse(path, name, size):
    text = open(path).read()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p50 = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
    p99 = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    print(name, size, rps, p50, p99, errors.group(1) if errors else 0)


def summary(path, names):
    runs = {}
    sizes = []
    for name, size, rps, p50, p99, errors in (line.split() for line in open(path)):
        if int(errors):
            print(f"WARNING: {name} {size}: {errors} non-2xx responses")
        runs.setdefault((name, size), []).append((float(rps), float(p50), float(p99)))
        if size not in sizes:
            sizes.append(size)
    print(f"{'size':>6} {'contender':>18} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
    for size in sizes:
        med = {}
        for name in names:
            rows = runs[(name, size)]
            med[name] = tuple(statistics.median(r[i] for r in rows) for i in range(3))
            rps, p50, p99 = med[name]
            print(f"{size:>6} {name:>18} {rps:>10.0f} {p50:>8.2f} {p99:>8.2f}")
        ref_name = os.environ.get("REF", "nginx")
        ref = med.get(ref_name)
        for name in names:
            if name == ref_name or ref is None:
                continue
            a = med[name]
            print(f"{size:>6} {name + '/' + ref_name:>18} {a[0] / ref[0]:>10.2f} {a[1] / ref[1]:>8.2f} {a[2] / ref[2]:>8.2f}")


if __name__ == "__main__":
    if sys.argv[1] == "parse":
        parse(*sys.argv[2:5])
    else:
        summary(sys.argv[2], sys.argv[3:])
