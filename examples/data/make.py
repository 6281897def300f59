#!/usr/bin/python3
"""Writes small files of each kind the README's "Your own data and model"
commands read, to try them: users.csv (a table with an owner column, a
date to ignore, categories, numbers and a string label) and X.npy, y.npy,
owners.npy (NumPy arrays). The values are seeded and synthetic: the label
depends on the features, so a model can learn it.

    /usr/bin/python3 examples/data/make.py [--out DIR] [--rows N]
"""
import argparse
import csv
import os

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=".", help="directory to write to")
    parser.add_argument("--rows", type=int, default=2000, help="rows of each")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(7)

    regions = ["north", "south", "east", "west"]
    with open(os.path.join(args.out, "users.csv"), "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["user_id", "signup_date", "region", "premium", "age",
                      "monthly_spend", "churn"])
        for i in range(args.rows):
            user = int(rng.integers(0, args.rows // 3))  # ~3 rows per user
            region = regions[int(rng.integers(0, 4))]
            premium = bool(rng.random() < 0.3)
            age = int(rng.integers(18, 80))
            spend = round(float(rng.gamma(2.0, 20.0)), 2)
            score = (1.3 + 0.04 * (40 - age) - 0.02 * spend + (1.0 if region ==
                     "south" else 0.0) - (1.5 if premium else 0.0) +
                     rng.normal(0, 0.5))
            out.writerow([user, f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}",
                          region, str(premium).lower(), age, spend,
                          "yes" if score > 0 else "no"])

    # Ten classes of 20-dimensional points around seeded centres.
    centres = rng.normal(0, 1, (10, 20)).astype(np.float32)
    y = rng.integers(0, 10, args.rows).astype(np.int64)
    x = (centres[y] + rng.normal(0, 1.6, (args.rows, 20))).astype(np.float32)
    owners = (np.arange(args.rows) // 2).astype(np.int64)  # 2 rows per owner
    np.save(os.path.join(args.out, "X.npy"), x)
    np.save(os.path.join(args.out, "y.npy"), y)
    np.save(os.path.join(args.out, "owners.npy"), owners)
    print(f"wrote users.csv, X.npy, y.npy, owners.npy ({args.rows} rows each) "
          f"in {args.out}")


if __name__ == "__main__":
    main()
