"""Start here: load a Rahnuma research export with pandas, rebuild the funnel, compare a nudge experiment's arms.

    pip install pandas pyarrow        # pandas is needed for this script only
    python docs/analysis-example.py EXPORT_FOLDER

The folder is what `rahnuma export --out EXPORT_FOLDER` wrote (CSV or Parquet); column meanings are in
docs/CODEBOOK.md and in the folder's datapackage.json.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pandas as pd

LADDER = [
    "chose_skill", "account_created", "profile_complete", "profile_approved", "payment_method_ready",
    "first_proposal_sent", "first_job_won", "first_payment_received", "first_review", "repeat_client",
]  # fmt: skip


def load(folder: Path) -> dict[str, pd.DataFrame]:
    """Every table of the export, with the types datapackage.json declares."""
    package = json.loads((folder / "datapackage.json").read_text(encoding="utf-8"))
    tables = {}
    for resource in package["resources"]:
        path = folder / resource["path"]
        if resource["format"] == "parquet":
            tables[resource["name"]] = pd.read_parquet(path)
            continue
        fields = resource["schema"]["fields"]
        dates = [f["name"] for f in fields if f["type"] in ("datetime", "date")]
        kinds = {"integer": "Int64", "number": "float64", "boolean": "boolean", "string": "string"}
        dtypes = {f["name"]: kinds[f["type"]] for f in fields if f["type"] in kinds}
        tables[resource["name"]] = pd.read_csv(path, dtype=dtypes, parse_dates=dates, keep_default_na=False,
                                               na_values=[""])  # fmt: skip
    return tables


def funnel(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """People who reached each rung, as a share of everyone who started."""
    started = len(tables["users"])
    reached = tables["milestones"].groupby("milestone")["user_id"].nunique().reindex(LADDER, fill_value=0)
    return pd.DataFrame({"people": reached, "share_of_started": (reached / max(started, 1)).round(3)})


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def experiment(tables: dict[str, pd.DataFrame], name: str = "welcome_d3_wording") -> pd.DataFrame:
    """Each arm's share answered within 48 hours (sent or withheld nudges), with 95% Wilson intervals and the
    difference to the control arm."""
    nudges = tables["nudges"]
    rows = nudges[(nudges["experiment"] == name) & nudges["outcome"].isin(["sent", "withheld"])]
    arms = rows.groupby("arm")["responded"].agg(n="count", answered="sum").astype(int)
    arms["rate"] = arms["answered"] / arms["n"]
    arms[["low", "high"]] = [wilson(int(k), int(n)) for k, n in zip(arms["answered"], arms["n"], strict=True)]
    control = arms.loc["control", "rate"] if "control" in arms.index else float("nan")
    arms["vs_control_points"] = ((arms["rate"] - control) * 100).round(1)
    return arms.round(3)


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "export")
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    print(f"Export of {manifest['period']}, key {manifest['pseudonym_key_id']}")
    tables = load(folder)
    print("\nFunnel over the milestone ladder:")
    print(funnel(tables).to_string())
    print("\nNudge experiment welcome_d3_wording (answered within 48 h):")
    print(experiment(tables).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
