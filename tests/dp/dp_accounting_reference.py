"""Reference ε values from Google's dp_accounting (PyPI `dp-accounting`) for
careledger's RDP accountant (core/src/analytics/dp.rs).

For a seeded grid of Poisson-subsampled Gaussian compositions (sampling rate
q, noise multiplier σ, steps, δ) this writes dp_accounting's RdpAccountant ε,
over the same Rényi orders careledger uses, as JSON. `core/tests/dp_reference.rs`
compares careledger's ε with every case (relative 1e-6).

    bash tests/dp/crosscheck.sh            # regenerate core/test_vectors/dp_accounting_eps.json and compare
    bash tests/dp/crosscheck.sh 2000       # a larger grid, compared, not committed
"""

import importlib.metadata
import json
import random
import sys

import dp_accounting
from dp_accounting.rdp import rdp_privacy_accountant as rdp

ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)) + [128, 256, 512, 1024]


def epsilon(compositions, delta):
    accountant = rdp.RdpAccountant(orders=ORDERS)
    for q, sigma, steps in compositions:
        event = dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
        accountant.compose(event, steps)
    return accountant.get_epsilon(delta)


def main():
    cases = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    rng = random.Random(15)
    out = []
    # Published-style settings first, then random ones.
    fixed = [
        ([(256 / 60000, 1.1, 14062)], 1e-5),  # DP-SGD on MNIST, 60 epochs
        ([(0.01, 4.0, 10000)], 1e-5),
        ([(0.1, 2.0, 100)], 1e-5),
        ([(1.0, 22.18, 30)], 1e-5),
        ([(0.2, 0.8, 50)], 1e-5),
        ([(0.01, 4.0, 10000), (0.1, 2.0, 100)], 1e-5),
    ]
    for compositions, delta in fixed:
        out.append({"compositions": compositions, "delta": delta, "epsilon": epsilon(compositions, delta)})
    while len(out) < cases:
        q = rng.choice([1.0, rng.uniform(0.001, 1.0), 10 ** rng.uniform(-4, -1)])
        sigma = 10 ** rng.uniform(-0.3, 1.5)
        steps = rng.choice([1, 10, 100, rng.randint(1, 3000)])
        delta = 10 ** rng.uniform(-9, -3)
        compositions = [(q, sigma, steps)]
        if rng.random() < 0.2:
            compositions.append((rng.uniform(0.01, 1.0), 10 ** rng.uniform(0, 1), rng.randint(1, 200)))
        eps = epsilon(compositions, delta)
        if eps == float("inf") or eps > 1e4:
            continue
        out.append({"compositions": compositions, "delta": delta, "epsilon": eps})
    json.dump(
        {
            "source": "dp_accounting %s RdpAccountant (PyPI dp-accounting), orders as careledger's default_orders"
            % importlib.metadata.version("dp-accounting"),
            "cases": out,
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
