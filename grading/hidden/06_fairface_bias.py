"""Hidden tests of notebook 06 (instructor only: never released, never mounted in the sandbox).

Every exercise of 06 except the experiment is "write it yourself": the solution
cells' ``forbid=[...]`` metadata refuses the package's fairness module and
fairlearn (the visible checks use them as oracles). Each exercise has explicit
expected values or properties besides the comparison with the reference
solution. The experiment ``fmr_ratio`` is range-checked (grading/experiments/),
not probed.
"""

from course_tools.grading.checks import equals, holds, reference


def probe_composition_shares(ns):
    import numpy as np
    import pandas as pd

    f = ns["composition_shares"]
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"race": rng.choice(["White", "Black", "East Asian", "Indian"], 400, p=[.5, .2, .2, .1]),
                          "age": rng.integers(0, 5, 400), "one": ["q"] * 400})
    out = {"random_race": f(frame, "race"), "random_age": f(frame, "age")}
    out["unsorted"] = f(pd.DataFrame({"g": list("zzzyx")}), "g")
    out["single_value"] = f(frame, "one")
    out["numbers"] = f(pd.DataFrame({"n": [3, 1, 1, 2]}), "n")
    out["sum_random"] = float(np.sum(np.asarray(out["random_race"], dtype=float)))
    return out


def probe_accuracy_gap(ns):
    import numpy as np

    f = ns["accuracy_gap"]
    rng = np.random.default_rng(6)
    g = rng.choice(["p", "q", "r", "s"], 800)
    y = rng.integers(0, 2, 800)
    p = np.where(rng.random(800) < np.where(g == "p", 0.95, np.where(g == "s", 0.6, 0.75)), y, 1 - y)
    return {
        "random": [float(v) for v in f(y, p, g)],
        "perfect": [float(v) for v in f(y, y, g)],
        "hand_made": [float(v) for v in f(np.array([1, 1, 0, 0, 1, 1]), np.array([1, 0, 0, 0, 1, 1]),
                                          np.array(list("aabbcc")))],
        "lists": [float(v) for v in f([1, 0, 1, 0], [1, 1, 1, 0], ["u", "u", "v", "v"])],
    }


def probe_bootstrap_interval(ns):
    import numpy as np

    f = ns["bootstrap_accuracy_interval"]
    c = np.random.default_rng(7).random(200) < 0.6
    out = {"interval": [float(v) for v in f(c, 3000, 0)], "sample_mean": float(c.mean())}
    out["same_seed_twice"] = [float(v) for v in f(c, 500, 4)] == [float(v) for v in f(c, 500, 4)]
    out["small"] = [float(v) for v in f(c[:25], 3000, 0)]
    out["all_correct"] = [float(v) for v in f(np.ones(40, dtype=bool), 200, 0)]
    out["all_wrong"] = [float(v) for v in f(np.zeros(40, dtype=bool), 200, 0)]
    return out


def probe_rates_by_group(ns):
    import numpy as np

    f = ns["rates_by_group"]

    def table(*args):
        r = f(*args)
        return {"groups": [str(g) for g in sorted(r.index)],
                "rates": r.loc[sorted(r.index), ["FMR", "FNMR"]].to_numpy(float)}

    rng = np.random.default_rng(9)
    same = rng.random(2000) < 0.4
    grp = rng.choice(["u", "v", "w", "x"], 2000)
    sc = np.where(same, rng.normal(1.4, 1, 2000), rng.normal(np.where(grp == "x", 0.6, 0), 1, 2000))
    return {
        "random_low": table(sc, same, grp, 0.0),
        "random_high": table(sc, same, grp, 1.2),
        "hand_made": table(np.array([0.9, 0.1, 0.8, 0.2]), np.array([True, False, False, True]),
                           np.array(list("aabb")), 0.5),
        "ties_match": table(np.array([0.5, 0.5]), np.array([False, True]), np.array(["g", "g"]), 0.5),
    }


def probe_threshold_for_fmr(ns):
    import numpy as np

    f = ns["threshold_for_fmr"]
    imp = np.round(np.random.default_rng(11).normal(size=2000), 2)  # many ties
    out = {}
    for fmr in (0.0005, 0.02, 0.25):
        t = float(f(imp, fmr))
        out[f"share_at_{fmr}"] = float(np.mean(imp >= t))
        out[f"next_lower_passes_{fmr}"] = bool(np.mean(imp >= np.max(imp[imp < t], initial=-np.inf)) > fmr)
    ten = np.arange(1, 11) / 10  # 0.1 ... 1.0
    t = float(f(ten, 0.2))
    out["ten_threshold_between"] = bool(0.8 < t <= 0.9)
    out["ten_share"] = float(np.mean(ten >= t))
    out["zero_fmr_share"] = float(np.mean(ten >= float(f(ten, 0.0))))
    return out


def probe_balancing_weights(ns):
    import numpy as np

    f = ns["balancing_weights"]
    g = np.array(["a"] * 70 + ["b"] * 20 + ["c"] * 10)
    w = np.asarray(f(g), dtype=float)
    shuffled = np.random.default_rng(12).permutation(g)
    ws = np.asarray(f(shuffled), dtype=float)
    ints = np.asarray(f(np.array([2, 2, 2, 7])), dtype=float)
    return {
        "per_group": [w[0], w[70], w[90]],
        "length": len(w),
        "mean": float(w.mean()),
        "shuffled_matches": bool(np.allclose(ws, np.select([shuffled == "a", shuffled == "b"], [w[0], w[70]], w[90]))),
        "single_group": np.asarray(f(np.array(["z"] * 5)), dtype=float),
        "integer_groups": ints,
    }


def probe_fmr_per_group(ns):
    import numpy as np

    f = ns["fmr_per_group"]
    rng = np.random.default_rng(13)
    desc = rng.normal(size=(90, 8)).astype(np.float32)
    groups = rng.choice(["A", "B", "C"], 90)
    out = {f"random_{t}": f(desc, groups, t) for t in (3.0, 4.0, 5.0)}
    line = np.zeros((3, 2))
    line[:, 0] = [0.0, 1.0, 3.0]  # distances 1, 3, 2
    pair = np.array([[5.0, 5.0], [5.0, 5.1]])  # distance 0.1
    toy = np.concatenate([line, pair])
    labels = np.array(["z"] * 3 + ["y"] * 2)
    for t in (1.5, 2.5, 0.05):
        r = f(toy, labels, t)
        out[f"toy_{t}"] = {"index": [str(i) for i in r.index], "values": np.asarray(r, dtype=float)}
    return out


EXPECT = {
    "composition_shares": {
        "unsorted": equals({"index": ["x", "y", "z"], "values": [0.2, 0.2, 0.6]}),
        "single_value": equals({"index": ["q"], "values": [1.0]}),
        "numbers": equals({"index": [1, 2, 3], "values": [0.5, 0.25, 0.25]}),
        "sum_random": equals(1.0),
    },
    "accuracy_gap": {
        "perfect": equals([0.0, 1.0]),
        "hand_made": equals([0.5, 0.5]),
        "lists": equals([0.5, 0.5]),
        "random": [reference(), holds(lambda v: v[0] > 0 and 0 < v[1] < 1,
                                      "difference > 0 and 0 < ratio < 1 for unequal groups")],
    },
    "bootstrap_interval": {
        # another valid resampling draws other indices: compare loosely with the reference, and by properties
        "interval": [reference(atol=0.02), holds(lambda v: v[0] < 0.6 < v[1] and 0.08 < v[1] - v[0] < 0.2,
                                                 "the 95% interval of 200 draws at p~0.6 is about 0.13 wide")],
        "small": [reference(atol=0.05), holds(lambda v: v[1] - v[0] > 0.25, "25 images give a wide interval")],
        "same_seed_twice": equals(True),
        "all_correct": equals([1.0, 1.0]),
        "all_wrong": equals([0.0, 0.0]),
    },
    "rates_by_group": {
        "hand_made": equals({"groups": ["a", "b"], "rates": [[0.0, 0.0], [1.0, 1.0]]}),
        "ties_match": equals({"groups": ["g"], "rates": [[1.0, 0.0]]}),
        "random_high": [reference(), holds(lambda r: r["rates"][3][0] > r["rates"][0][0],
                                           "group x, whose impostors score higher, has the higher FMR")],
    },
    "threshold_for_fmr": {
        "share_at_0.0005": [reference(), holds(lambda s: s <= 0.0005, "at most the target share of impostors pass")],
        "share_at_0.02": [reference(), holds(lambda s: s <= 0.02, "at most the target share of impostors pass")],
        "share_at_0.25": [reference(), holds(lambda s: s <= 0.25, "at most the target share of impostors pass")],
        "next_lower_passes_0.02": equals(True),
        "next_lower_passes_0.25": equals(True),
        "ten_threshold_between": equals(True),
        "ten_share": equals(0.2),
        "zero_fmr_share": equals(0.0),
    },
    "balancing_weights": {
        "per_group": equals([100 / 210, 100 / 60, 100 / 30]),
        "length": equals(100),
        "mean": equals(1.0),
        "shuffled_matches": equals(True),
        "single_group": equals([1.0] * 5),
        "integer_groups": equals([4 / 6, 4 / 6, 4 / 6, 2.0]),
    },
    "fmr_per_group": {
        "toy_1.5": equals({"index": ["y", "z"], "values": [1.0, 1 / 3]}),
        "toy_2.5": equals({"index": ["y", "z"], "values": [1.0, 2 / 3]}),
        "toy_0.05": equals({"index": ["y", "z"], "values": [0.0, 0.0]}),
        "random_5.0": [reference(), holds(lambda r: all(0 <= v <= 1 for v in r["values"]) and r["index"] == ["A", "B", "C"],
                                          "shares between 0 and 1, indexed by the sorted groups")],
    },
}
