"""Paper-style tables from the runs, with every published number beside ours (and only here).

Published figures are those the authors state in their READMEs and issue answers
(`docs/paper_numbers.md`); each carries the data it was measured on, which is never
ours: a table shows them in their own column, never mixed with our numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from hrda_lib.presets import CLAIMS, PAPER_DATA, ROW_TABLE

__all__ = ["CLAIMS", "PAPER_DATA", "PUBLISHED"]

# Published mIoU (%) by row key, with what each was measured on and where it is stated (from
# each row's `presets.Row.published`).
PUBLISHED: pd.DataFrame = pd.DataFrame(
    [
        (row.key, row.published.method, row.published.on, row.published.miou, row.published.source)
        for row in ROW_TABLE
        if row.published is not None
    ],
    columns=["key", "method", "published_on", "published_mIoU", "source"],
)
# The released HRDA GTA→Cityscapes checkpoint (the median seed) on Cityscapes val.
PUBLISHED_CHECKPOINT: tuple[float, str] = (
    73.79,
    "released HRDA GTA→CS checkpoint, Cityscapes val, 500 images (docs/paper_numbers.md)",
)
# Table 2: HRDA with DeepLabV2 per UDA method (author's answer in lhoyer/HRDA issue 11).
PUBLISHED_UDA_METHODS: dict[str, str] = {
    "DACS": "59.4 (HRDA, DeepLabV2; lhoyer/HRDA issue 11)",
    "DAFormer recipe": "≈63 (HRDA, DeepLabV2; lhoyer/HRDA issue 11)",
}
# Domain generalization, trained on GTA only (HRDA extension paper): Cityscapes / BDD100K /
# Mapillary val and their mean.
PUBLISHED_DG: dict[str, str] = {
    "dg_hrda": "57.41 / 49.11 / 61.16 (mean 55.90)",
    "dg_daformer": "52.65 / 47.89 / 54.66 (mean 51.73)",
}


def mean_pm_std(mean: float, std: float, n: int) -> str:
    """ "61.2 ± 0.8" (or "61.2 (1 seed)" when the spread is undefined)."""
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.1f} ± {std:.1f}" if n > 1 and np.isfinite(std) else f"{mean:.1f} (1 seed)"


def markdown_table(table: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A GitHub-flavoured Markdown table of a DataFrame (no external dependency)."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if not np.isfinite(v) else format(v, floatfmt)
        return str(v)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"


def summarize_rows(
    per_run: pd.DataFrame,
    tables: Mapping[str, Sequence[str]],
    labels: Mapping[str, str],
    measured_on: str,
    min_rows: int = 2,
) -> pd.DataFrame:
    """Paper-style tables in tidy form: one line per (table, row) with the mean, std and number
    of seeds of the row's mIoU, the mean of its cost columns, and what it was measured on.

    Args:
        per_run: one line per run with `key`, `mIoU` (and optional `seconds_per_iter`,
            `memory_mb`).
        tables: table name -> row keys in the paper's order; rows without runs are left out,
            and so are tables with fewer than `min_rows` rows (one row alone compares nothing).
        labels: row key -> row name.
    """
    extra = {c: (c, "mean") for c in ("seconds_per_iter", "memory_mb") if c in per_run}
    stats = per_run.groupby("key", sort=False).agg(
        mean=("mIoU", "mean"), std=("mIoU", "std"), n_seeds=("mIoU", "count"), **extra
    )
    rows = [
        {"table": table, "order": i, "key": key, "label": labels[key], **stats.loc[key]}
        for table, keys in tables.items()
        if sum(key in stats.index for key in keys) >= min_rows
        for i, key in enumerate(keys)
        if key in stats.index
    ]
    return pd.DataFrame(rows).assign(measured_on=measured_on)


def of_profile(table: pd.DataFrame | None, profile: str, source: str) -> pd.DataFrame | None:
    """The rows of `table` (a notebook's `tables.csv` or `main_comparison.csv`) measured under
    `profile`, or None when it has none, saying so: tables of different profiles (another
    benchmark, schedule or seed set) are never combined into one difference.

    Args:
        table: an upstream table with a `profile` column or a `measured_on` label; None passes.
        profile: the profile's name.
        source: the notebook that wrote it, for the message.
    """
    if table is None:
        return None
    if "profile" in table.columns:
        mine = table["profile"] == profile
    else:
        mine = table["measured_on"].str.contains(f"profile {profile},", regex=False)
    if not mine.any():
        print(f"{source}: no rows of profile {profile!r} yet (run it under that profile); left out")
        return None
    if not mine.all():
        print(f"{source}: {int((~mine).sum())} rows of other profiles left out")
    return table[mine].reset_index(drop=True)


def tables_markdown(summary: pd.DataFrame) -> str:
    """One Markdown table per paper table of a `summarize_rows` result."""
    parts = []
    for table, rows in summary.groupby("table", sort=False):
        shown = pd.DataFrame({"row": rows["label"]})
        shown["mIoU (%)"] = [mean_pm_std(*v) for v in rows[["mean", "std", "n_seeds"]].to_numpy()]
        if rows.get("memory_mb", pd.Series(dtype=float)).notna().any():
            shown["train memory (MB)"] = rows["memory_mb"].round(1).to_numpy()
        if rows.get("seconds_per_iter", pd.Series(dtype=float)).notna().any():
            shown["s / iteration"] = rows["seconds_per_iter"].round(3).to_numpy()
        note = f"Measured on: {rows['measured_on'].iloc[0]}."
        parts.append(f"### {table}\n\n{note}\n\n{markdown_table(shown)}")
    return "\n".join(parts)


def published_beside(summary: pd.DataFrame) -> pd.DataFrame:
    """The main comparison with the published mIoU of the same method beside ours; each column's
    header names the data it was measured on (they differ: never read them as one column)."""
    table = summary.merge(PUBLISHED, on="key", how="left")
    ours = f"ours: mIoU (%) on {summary['measured_on'].iloc[0]}"
    theirs = f"published: mIoU (%) on {PAPER_DATA}, MiT-b5, 40k iterations"
    return pd.DataFrame(
        {
            "key": table["key"],
            "method": table["label"],
            "mean": table["mean"],
            "std": table["std"],
            ours: [mean_pm_std(*v) for v in table[["mean", "std", "n_seeds"]].to_numpy()],
            theirs: table["published_mIoU"],
            "published: source": table["source"].fillna("–"),
        }
    )


def claim_deltas(per_run: pd.DataFrame, measured: Callable[[Sequence[int]], str]) -> pd.DataFrame:
    """Our mIoU differences for `CLAIMS`, each over the seeds both of its rows were trained with
    (a row of one seed is never set against another row's mean over three): the difference of
    the two rows' means over those seeds, its spread (the two rows' stds added in quadrature), the
    std of the per-seed differences (runs of one seed share their initialization and data order,
    so this paired spread leaves out what the two rows have in common), the smallest per-seed
    difference, and the published difference where both published numbers exist.

    Args:
        per_run: one line per run with `key`, `seed` and `mIoU`.
        measured: common seeds -> what the difference was measured on (e.g. `measured_on` of
            the profile).
    """
    by_key = {key: part.set_index("seed")["mIoU"] for key, part in per_run.groupby("key")}
    published = PUBLISHED.set_index("key")
    rows = []
    for claim, row, base in CLAIMS:
        if row not in by_key or base not in by_key:
            continue
        seeds = sorted(set(by_key[row].index) & set(by_key[base].index))
        if not seeds:
            continue
        a, b = by_key[row][seeds], by_key[base][seeds]
        paired = a - b
        theirs = np.nan
        if row in published.index and base in published.index:
            theirs = published.loc[row, "published_mIoU"] - published.loc[base, "published_mIoU"]
        rows.append(
            {
                "claim": claim,
                "ours: Δ mIoU": round(float(a.mean() - b.mean()), 2),
                "ours: spread": round(float(np.hypot(a.std(), b.std())), 2),
                "ours: paired std": round(float(paired.std()), 2),
                "ours: smallest per seed": round(float(paired.min()), 2),
                "ours: seeds": len(seeds),
                "ours: measured on": measured(seeds),
                "published: Δ mIoU": round(theirs, 2),
            }
        )
    return pd.DataFrame(rows)


def method_pairs_table(summary: pd.DataFrame, pairs: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """Table 2's layout: per UDA method, mIoU on LR data, with HRDA, and HRDA's gain.

    Args:
        summary: `summarize_rows` output holding the rows of `pairs`.
        pairs: method name -> (LR data row key, HRDA row key); methods missing a row are left out.
    """
    stats = summary.drop_duplicates("key").set_index("key")
    rows = []
    for method, (lr, hrda) in pairs.items():
        if lr not in stats.index or hrda not in stats.index:
            continue
        a, b = stats.loc[lr], stats.loc[hrda]
        rows.append(
            {
                "UDA method": method,
                "without HRDA (LR data)": mean_pm_std(a["mean"], a["std"], a["n_seeds"]),
                "with HRDA": mean_pm_std(b["mean"], b["std"], b["n_seeds"]),
                "Δ mIoU": round(b["mean"] - a["mean"], 2),
                "spread of Δ": round(float(np.hypot(a["std"], b["std"])), 2),
                "published: with HRDA": PUBLISHED_UDA_METHODS.get(method, "–"),
            }
        )
    return pd.DataFrame(rows)


def seed_differences(per_run: pd.DataFrame, row: str, base: str) -> pd.DataFrame:
    """Per seed: `row`'s mIoU minus `base`'s (both trained with that seed), and the mean and
    std of those differences over the seeds."""
    wide = per_run.pivot_table(index="seed", columns="key", values="mIoU")
    if row not in wide or base not in wide:
        return pd.DataFrame(columns=["seed", "difference"])
    diff = (wide[row] - wide[base]).dropna().round(2)
    table = diff.rename("difference").reset_index().astype({"seed": str})
    summary = pd.DataFrame(
        [("mean", round(float(diff.mean()), 2)), ("std", round(float(diff.std()), 2))],
        columns=["seed", "difference"],
    )
    return pd.concat([table, summary], ignore_index=True).assign(comparison=f"{row} − {base}")


THIN_CLASSES = ("pole", "traffic light", "traffic sign", "person", "rider", "motorcycle", "bicycle")
LARGE_CLASSES = ("road", "building", "vegetation", "sky")


def class_differences(wide: pd.DataFrame, row: str, base: str) -> pd.DataFrame:
    """Per class: the IoU of `row` minus that of `base` for each seed both ran with, and the
    mean and std over seeds; `wide` is the main comparison (a line per row and seed, a column
    per class). Thin classes (HRDA's detail case) are marked."""
    a = wide[wide["row"] == row].set_index("seed")
    b = wide[wide["row"] == base].set_index("seed")
    seeds = a.index.intersection(b.index)
    classes = [c for c in wide.columns if c not in ("row", "seed", "iters", "profile", "miou")]
    diff = a.loc[seeds, classes] - b.loc[seeds, classes]
    return pd.DataFrame(
        {
            "class": classes,
            "thin": [c in THIN_CLASSES for c in classes],
            f"{row} − {base}": diff.mean().round(2).to_numpy(),
            "std over seeds": diff.std().round(2).to_numpy(),
            "seeds": len(seeds),
        }
    )


def attention_by_group(per_class: pd.DataFrame) -> pd.DataFrame:
    """Mean scale attention to the detail branch of the thin classes and of the large ones
    (road, building, vegetation, sky), weighted by predicted pixels (`03`'s per-class table:
    class, quantity, value with quantities `pixels` and `mean_attention`)."""
    wide = per_class.pivot_table(index="class", columns="quantity", values="value")
    rows = []
    for group, classes in (("thin", THIN_CLASSES), ("large", LARGE_CLASSES)):
        part = wide.loc[[c for c in classes if c in wide.index]].dropna(subset=["mean_attention"])
        part = part[part["pixels"] > 0]
        weighted = (part["mean_attention"] * part["pixels"]).sum() / max(part["pixels"].sum(), 1)
        rows.append(
            {
                "classes": group,
                "mean attention to detail": round(float(weighted), 3),
                "predicted pixels": int(part["pixels"].sum()),
                "classes with predictions": ", ".join(part.index),
            }
        )
    return pd.DataFrame(rows)
