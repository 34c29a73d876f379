"""Optuna's side of bench/src/sampler-quality.ts: best-after-N of Optuna's samplers on the test
functions, one JSON object on stdout. The functions mirror sampler-quality.ts's definitions.

    python3 optuna_tpe.py --function branin --trials 100 --seeds 0,1,2 --sampler tpe
"""

import argparse
import json
import math
import time

import optuna


def branin(x):
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1 * x1 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


def ackley(x):
    n = len(x)
    s1 = sum(v * v for v in x) / n
    s2 = sum(math.cos(2 * math.pi * v) for v in x) / n
    return -20 * math.exp(-0.2 * math.sqrt(s1)) - math.exp(s2) + 20 + math.e


# name -> (function, [(low, high)] per dimension)
FUNCTIONS = {
    "branin": (branin, [(-5.0, 10.0), (0.0, 15.0)]),
    "rosenbrock-4d": (rosenbrock, [(-5.0, 10.0)] * 4),
    "ackley-5d": (ackley, [(-32.768, 32.768)] * 5),
}


def make_sampler(kind, seed):
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)  # Optuna's defaults
    if kind == "tpe-univariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=False)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SystemExit(f"unknown sampler {kind!r}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--function", required=True, choices=sorted(FUNCTIONS))
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--sampler", default="tpe")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    f, bounds = FUNCTIONS[args.function]
    best, seconds = [], []
    for seed in [int(s) for s in args.seeds.split(",")]:
        study = optuna.create_study(direction="minimize", sampler=make_sampler(args.sampler, seed))

        def objective(trial):
            return f([trial.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)])

        started = time.perf_counter()
        study.optimize(objective, n_trials=args.trials)
        seconds.append(time.perf_counter() - started)
        best.append(study.best_value)
    print(json.dumps({"optuna": optuna.__version__, "best": best, "seconds": seconds}))


if __name__ == "__main__":
    main()
