#!/usr/bin/env python3
"""scikit-learn side of core/benches/train.rs: the same fits on the same CSV.

Usage: train_sklearn.py CSV TEST_IDX REPS K KMEANS_TOL_SQ

CSV has a header, feature columns, then `target` (0/1). TEST_IDX lists the
0-based data rows held out (one per line); every other row trains. Timed,
exactly like careledger's `train`: standard scaling fitted on the training
rows plus the fit. LogisticRegression(lbfgs, C=1, tol=1e-4, max_iter=100);
KMeans(k-means++, n_init=1, max_iter=300, tol). Prints one JSON object.
Each fit is timed twice: with scikit-learn's default threading (OpenBLAS
and OpenMP on every core) and limited to one thread (threadpoolctl). On a
busy machine the default threading can cost small fits 100+ ms of thread
contention, so the caller compares against the faster of the two.
Exits with status 3 when scikit-learn is missing.
"""
import json
import statistics
import sys
import time

try:
    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from threadpoolctl import threadpool_limits
except ImportError as missing:  # pragma: no cover
    print(f"scikit-learn side skipped: {missing}", file=sys.stderr)
    sys.exit(3)


def main() -> None:
    csv, test_idx, reps, k, tol = sys.argv[1:6]
    reps, k, tol = int(reps), int(k), float(tol)
    data = np.loadtxt(csv, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1].astype(int)
    held_out = np.zeros(len(y), dtype=bool)
    with open(test_idx) as f:
        held_out[[int(line) for line in f if line.strip()]] = True
    x_train, y_train = x[~held_out], y[~held_out]
    x_test, y_test = x[held_out], y[held_out]

    def logistic():
        scaler = StandardScaler().fit(x_train)
        model = LogisticRegression(C=1.0, tol=1e-4, max_iter=100)
        model.fit(scaler.transform(x_train), y_train)
        return scaler, model

    def kmeans():
        scaler = StandardScaler().fit(x_train)
        model = KMeans(n_clusters=k, init="k-means++", n_init=1, max_iter=300, tol=tol,
                       random_state=0)
        model.fit(scaler.transform(x_train))
        return scaler, model

    out = {"sklearn": sklearn.__version__, "numpy": np.__version__,
           "train_rows": int(len(y_train)), "test_rows": int(len(y_test))}
    def timed(fit):
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            scaler, model = fit()
            times.append(time.perf_counter() - start)
        return statistics.median(times), scaler, model

    for name, fit in (("logistic", logistic), ("kmeans", kmeans)):
        default_s, scaler, model = timed(fit)
        with threadpool_limits(limits=1):
            single_s, _, _ = timed(fit)
        entry = {"median_s": min(default_s, single_s), "default_threads_s": default_s,
                 "one_thread_s": single_s, "n_iter": int(np.max(model.n_iter_))}
        if name == "logistic":
            entry["accuracy"] = float(model.score(scaler.transform(x_test), y_test))
        else:
            entry["inertia_per_row"] = float(model.inertia_ / len(y_train))
        out[name] = entry
    print(json.dumps(out))


if __name__ == "__main__":
    main()
