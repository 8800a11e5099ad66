"""Import at province scale: ``patrolsync import`` of a large households CSV, against a raw
``executemany`` of the same rows into a bare table of the same columns, in the same run.

Writes a tree (1 district, 10 streets, 100 communities, 1,000 grids) and a households CSV of
``--households`` rows (GB18030 with Chinese column names, as an office's spreadsheet would be),
migrates a fresh SQLite file (or the given, empty, PostgreSQL database), imports the tree, then
times ``patrolsync import`` of the CSV in a child process and reads its peak memory. The
reference is the same rows, already parsed, inserted with the driver's ``executemany`` in
batches of the same size. The last line is one JSON object.

    .venv/bin/python bench/import_households.py --quick          # 100,000 households
    .venv/bin/python bench/import_households.py                  # 1,000,000 households
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STREETS, COMMUNITIES, GRIDS = 10, 10, 10
"""Streets, communities per street, grids per community."""


def tree(path: Path) -> list[str]:
    grids: list[str] = []
    lines = ["units:", "  - {id: p, kind: district, name: 金台区, children: ["]
    for s in range(STREETS):
        lines.append(f"    {{id: s{s}, kind: street, name: 街道{s}, children: [")
        for c in range(COMMUNITIES):
            lines.append(f"      {{id: s{s}c{c}, kind: community, name: 社区{c}, children: [")
            for g in range(GRIDS):
                gid = f"s{s}c{c}g{g}"
                grids.append(gid)
                lines.append(f"        {{id: {gid}, kind: grid, name: 第{g + 1}网格}},")
            lines.append("      ]},")
        lines.append("    ]},")
    lines.append("  ]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return grids


def households(path: Path, n: int, grids: list[str]) -> None:
    tiers = ("高风险", "重点", "一般", "一般", "一般")
    with path.open("w", encoding="gb18030", newline="") as f:
        f.write("户编号,网格,地址,户主,标签,关爱等级\r\n")
        for i in range(n):
            row = (
                f"h{i:07d}",
                grids[i % len(grids)],
                f"幸福小区{i % 40 + 1}号楼{i % 3 + 1}单元{i % 600 + 101}室",
                f"王{i % 997}",
                "独居；高龄" if i % 5 == 0 else "",
                tiers[i % 5],
            )
            f.write(",".join(row) + "\r\n")


def raw_sqlite(db: Path, path: Path, batch: int) -> float:
    """Parse the same CSV and insert it with sqlite3's executemany; rows per second."""
    import csv

    conn = sqlite3.connect(db)
    conn.execute(
        "CREATE TABLE raw_household (id TEXT PRIMARY KEY, grid_id TEXT, address TEXT,"
        " head_name TEXT, tags TEXT, care_tier TEXT)"
    )
    began = time.perf_counter()
    n = 0
    with path.open(encoding="gb18030", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        part: list[list[str]] = []
        for row in reader:
            part.append(row)
            if len(part) == batch:
                conn.executemany("INSERT INTO raw_household VALUES (?, ?, ?, ?, ?, ?)", part)
                conn.commit()
                n += len(part)
                part = []
        if part:
            conn.executemany("INSERT INTO raw_household VALUES (?, ?, ?, ?, ?, ?)", part)
            conn.commit()
            n += len(part)
    seconds = time.perf_counter() - began
    conn.close()
    return n / seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--households", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 households")
    parser.add_argument("--batch", type=int, default=5_000)
    args = parser.parse_args()
    n = 100_000 if args.quick else args.households
    cli = [sys.executable, "-m", "patrolsync.cli"]
    with tempfile.TemporaryDirectory(prefix="patrolsync-bench-import-") as tmp:
        where = Path(tmp)
        db = where / "bench.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PATROLSYNC_")}
        env["PATROLSYNC_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
        grids = tree(where / "tree.yaml")
        csv_path = where / "households.csv"
        households(csv_path, n, grids)
        size_mb = csv_path.stat().st_size / 2**20
        subprocess.run([*cli, "migrate"], env=env, check=True, capture_output=True)
        subprocess.run(
            [*cli, "import", str(where / "tree.yaml")], env=env, check=True, capture_output=True
        )
        began = time.perf_counter()
        done = subprocess.run(
            [*cli, "import", str(csv_path), "--batch", str(args.batch)],
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return 1
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        raw_rps = raw_sqlite(where / "raw.db", csv_path, args.batch)
    rps = n / seconds
    figures = {
        "households": n,
        "csv_mb": round(size_mb, 1),
        "seconds": round(seconds, 1),
        "rows_per_s": round(rps),
        "peak_rss_mb": round(peak_mb),
        "raw_rows_per_s": round(raw_rps),
        "ratio": round(rps / raw_rps, 3),
        "batch": args.batch,
        "backend": "sqlite",
    }
    print(
        f"imported {n:,} households ({size_mb:.0f} MB of GB18030 CSV) in {seconds:.1f} s:"
        f" {rps:,.0f}/s, peak {peak_mb:.0f} MB; raw executemany {raw_rps:,.0f}/s;"
        f" ratio {rps / raw_rps:.2f}"
    )
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
