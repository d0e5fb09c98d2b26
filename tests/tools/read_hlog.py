"""Decodes a dpsbench latency.hlog with the Python HdrHistogram port (an independent reader) and
prints, per phase, the intervals added together as JSON:
{"phase": {"count": n, "p50_us": ..., "p90_us": ..., "p99_us": ..., "p999_us": ..., "max_us": ...,
           "python_percentiles": {...}, "intervals": k}}.

With --counts, each phase also has "counts": {"value": count} of its added histogram.
With --window FIRST-LAST, only the intervals that start in the seconds FIRST to LAST (inclusive,
whole seconds since the log's BaseTime) are added: a window of the run, as report.html selects.

Percentiles are computed twice from the decoded counts: by nearest rank (rank = ceil(q * n), the
definition summary.json uses), walking the decoded histogram's recorded values; and by the port's
own get_value_at_percentile, which rounds the rank half up instead (reported for comparison).
"""
import json
import math
import sys

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

QUANTILES = {"p50_us": 0.50, "p90_us": 0.90, "p99_us": 0.99, "p999_us": 0.999}


def nearest_rank(histogram, quantile):
    rank = max(1, math.ceil(quantile * histogram.get_total_count()))
    seen = 0
    for item in histogram.get_recorded_iterator():
        seen += item.count_at_value_iterated_to
        if seen >= rank:
            return histogram.get_highest_equivalent_value(item.value_iterated_to)
    raise ValueError("rank beyond the histogram")


def counts(histogram):
    """Every recorded value (its bucket's highest equivalent) with its count, as text keys."""
    return {
        str(histogram.get_highest_equivalent_value(item.value_iterated_to)): item.count_at_value_iterated_to
        for item in histogram.get_recorded_iterator()
    }


def second_of(reader, histogram):
    """The whole second since BaseTime in which the interval starts (to the log's millisecond)."""
    offset = round(histogram.get_start_time_stamp() / 1000.0 - reader.base_time_sec, 3)
    return math.floor(offset)


def main(path, with_counts=False, window=None):
    # Bounds of dpsbench's latency histograms: 1 us to one hour, 3 significant digits.
    reader = HistogramLogReader(path, HdrHistogram(1, 3_600_000_000, 3))
    totals, intervals = {}, {}
    while True:
        histogram = reader.get_next_interval_histogram()
        if histogram is None:
            break
        tag = histogram.get_tag()
        if tag is None:
            raise SystemExit("an interval without a Tag=")
        if window is not None and not window[0] <= second_of(reader, histogram) <= window[1]:
            continue
        if tag not in totals:
            totals[tag] = HdrHistogram(1, 3_600_000_000, 3)
            intervals[tag] = 0
        totals[tag].add(histogram)
        intervals[tag] += 1
    out = {}
    for tag, histogram in totals.items():
        stats = {name: nearest_rank(histogram, q) for name, q in QUANTILES.items()}
        stats["count"] = histogram.get_total_count()
        stats["max_us"] = histogram.get_highest_equivalent_value(histogram.get_max_value())
        stats["python_percentiles"] = {
            name: histogram.get_value_at_percentile(q * 100) for name, q in QUANTILES.items()
        }
        stats["intervals"] = intervals[tag]
        if with_counts:
            stats["counts"] = counts(histogram)
        out[tag] = stats
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    # --counts: also every phase's added histogram, value by value; --window FIRST-LAST: only
    # the intervals starting in those seconds.
    args = sys.argv[2:]
    window = None
    if "--window" in args:
        first, last = args[args.index("--window") + 1].split("-")
        window = (int(first), int(last))
    main(sys.argv[1], with_counts="--counts" in args, window=window)
