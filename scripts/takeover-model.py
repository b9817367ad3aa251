#!/usr/bin/env python3
"""A Monte Carlo model of the followers' takeover race (src/election/takeover.rs).

Each race: N followers draw a delay with P(D <= t) = min(1, e^(t/u) / C) (everyone at once while
the estimate C is below 4); the first draw wins, and every follower whose delay falls within one
round trip r of it writes too (it has not yet seen the winner). The winner then sets the group's
estimate as the elector does: at once -> 2C (C below 4: unchanged); after d -> C e^(-(d - r)/u),
no less than C/16, within [2, 1024]. The round trip varies from race to race (log-normal around
1, sigma 0.5); the unit is a fixed multiple of its median. Times are in round trips.

Prints, per group size and unit: the added delay (median, p90), writes per handover (median),
and over runs of 8 handovers (the benchmark's) the share whose worst exceeds 5 writes or whose
median exceeds 2. No delivery order, CPU or API server: what the draw and the learning alone do.

    python3 scripts/takeover-model.py            # under a second
"""

import math
import random
import statistics

AT_ONCE_BELOW = 4.0
SHRINK_AT_MOST = 16.0
CROWD_START, CROWD_MIN, CROWD_MAX = 256.0, 2.0, 1024.0


def races(followers, unit, rounds, sigma=0.5, seed=1):
    rng = random.Random(seed)
    crowd = CROWD_START
    for _ in range(rounds):
        round_trip = math.exp(rng.gauss(0.0, sigma))
        draws = []
        for _ in range(followers):
            scaled = rng.random() * crowd
            at_once = scaled <= 1.0 or crowd < AT_ONCE_BELOW
            draws.append(0.0 if at_once else unit * math.log(scaled))
        first = min(draws)
        writes = sum(1 for d in draws if d < first + round_trip)
        yield first, writes
        if first == 0.0:
            estimate = crowd if crowd < AT_ONCE_BELOW else crowd * 2.0
        else:
            estimate = crowd * math.exp(-max(0.0, first - 1.0) / unit)
        crowd = min(CROWD_MAX, max(CROWD_MIN, estimate, crowd / SHRINK_AT_MOST))


def nearest_rank(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main():
    print("unit/r  N    delay median  delay p90  writes median  P(worst of 8 > 5)  P(median of 8 > 2)")
    for unit in (2.5, 4.0):
        for followers in (2, 49, 199):
            # The first 16 races learn from the starting estimate; the rest are the steady state.
            results = list(races(followers, unit, 3216))[16:]
            delays = [d for d, _ in results]
            writes = [w for _, w in results]
            runs = [writes[i : i + 8] for i in range(0, len(writes), 8)]
            worst = sum(1 for run in runs if max(run) > 5) / len(runs)
            median = sum(1 for run in runs if statistics.median(run) > 2) / len(runs)
            print(
                f"{unit:6.2f}  {followers:<4} {statistics.median(delays):12.2f}  "
                f"{nearest_rank(delays, 0.9):9.2f}  {statistics.median(writes):13}  "
                f"{worst:17.2f}  {median:18.2f}"
            )


if __name__ == "__main__":
    main()
