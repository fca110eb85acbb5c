"""Re-draw the committed figures that the notebooks draw from tables alone, from the CSVs each
notebook committed beside them: `python -m hrda_lib.reproduction.redraw [--results results]`.

Why: a change to a chart (its labels, legend or layout) should reach the committed PNGs without
re-executing the notebooks, whose synthetic profile retrains about nine hours of runs. Each figure
is drawn with the call of the notebook cell that draws it, from what that cell's inputs were
saved as (05, 06 and 09 name their curves' rows by the notebook's `LABELS`). Figures that need a
trained model or images (attention, predictions, data samples) are left as they are.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from hrda_lib import charts, plots
from hrda_lib.paths import results_root
from hrda_lib.reproduction.catalogue import Profile, get_profile, row_config, row_labels
from hrda_lib.reproduction.runs import Run, training_curves
from hrda_lib.reproduction.tables import published_beside
from hrda_lib.viz import save_figure


def _profile(folder: Path) -> tuple[Profile, dict]:
    """The profile and the parameters a notebook ran with (its `config.json`)."""
    params = json.loads((folder / "config.json").read_text())["parameters"]
    return get_profile(params["profile"]), params


def _stand_in(folder: Path) -> dict:
    profile, params = _profile(folder)
    curves = pd.read_csv(folder / "curves.csv")
    first = curves[curves["seed"] == (params["seeds"] or list(profile.stand_in_seeds))[0]]
    return {"with_and_without": charts.curves_figure(first, ["loss_source_total", "val_miou"])}


def _data_preparation(folder: Path) -> dict:
    metrics = pd.read_csv(folder / "metrics.csv")
    rcs = metrics[metrics["quantity"].str.startswith("rcs_probability")]
    share = metrics.query("quantity == 'pixel_share'")
    oracle = metrics.query("domain == 'target' and quantity in ['oracle_iou_x2', 'oracle_iou_x4']")
    rcs_title = "probability that RCS draws a class"
    oracle_title = "IoU of target labels down-sampled (nearest) and up-sampled back; 1 = unaffected"
    return {
        "class_frequencies": plots.class_bars(
            share,
            "value",
            hue="domain",
            log=True,
            title="share of labelled pixels",
            ylabel="pixel share (log)",
        ),
        "rcs": plots.class_bars(rcs, "value", hue="quantity", ylabel="P(class)", title=rcs_title),
        "resolution_oracle": plots.class_bars(
            oracle, "value", hue="quantity", ylabel="IoU", title=oracle_title
        ),
    }


def _scale_attention(folder: Path) -> dict:
    metrics = pd.read_csv(folder / "metrics.csv")  # the notebook's per-class table, melted
    per_class = metrics.pivot(index=["class", "train_id"], columns="quantity", values="value")
    per_class = per_class.reset_index().sort_values("train_id")
    branches = ["IoU_context", "IoU_detail", "IoU_fused"]
    branch_iou = per_class.melt("class", branches, var_name="branch", value_name="IoU")
    attention_title = (
        "scale attention of the predicted class, averaged over its pixels (target val)"
    )
    branch_title = "per-class IoU of each branch (target val)"
    return {
        "attention_per_class": plots.class_bars(
            per_class, "mean_attention", ylabel="mean attention to detail", title=attention_title
        ),
        "branch_iou": plots.class_bars(
            branch_iou, "IoU", hue="branch", ylabel="IoU (%)", title=branch_title
        ),
    }


def _crop_sizes(folder: Path) -> dict:
    costs = pd.read_csv(folder / "tables.csv").drop_duplicates("key")
    return {"cost_tradeoff": charts.tradeoff_figure(costs, "memory_mb", title="mIoU vs memory")}


def _components(folder: Path) -> dict:
    profile, params = _profile(folder)
    seed = (params["seeds"] or list(profile.component_seeds))[0]
    runs = []
    for key in profile.components:  # each run's log, wherever the notebooks keep it
        cfg = row_config(profile, key, seed)
        work_dir = sorted(folder.parent.glob(f"[0-9][0-9]_*/runs/{cfg.name}_seed{seed}"))[0]
        runs.append(Run(key, seed, cfg, work_dir, pd.read_csv(work_dir / "metrics.csv"), True))
    curves = training_curves(runs)
    labels = row_labels(profile, profile.components)
    return {"curves": charts.curves_figure(curves, ["loss_source_total", "val_miou"], labels)}


def _full_training(folder: Path) -> dict:
    profile, _ = _profile(folder)
    curves = pd.read_csv(folder / "curves.csv")
    quantities = ["loss_source_total", "loss_mixed_total", "pseudo_weight", "val_miou"]
    labels = row_labels(profile, profile.main)
    main_table = published_beside(pd.read_csv(folder / "tables.csv"))
    return {
        "training_curves": charts.curves_figure(curves, quantities, labels),
        "main_comparison": charts.ours_and_published_figure(main_table),
    }


def _figures_tables(folder: Path) -> dict:
    by_class = pd.read_csv(folder / "class_differences.csv")
    return {
        "main_comparison": charts.ours_and_published_figure(pd.read_csv(folder / "main_table.csv")),
        "class_differences": plots.class_bars(
            by_class.assign(value=by_class["hrda − daformer_lr"]),
            "value",
            hue="thin",
            ylabel="IoU difference (%)",
            title="HRDA − DAFormer (LR data), mean over seeds",
        ),
    }


def _uda_methods(folder: Path) -> dict:
    profile, _ = _profile(folder)
    keys = list(profile.uda_method_rows)
    curves = pd.read_csv(folder / "curves.csv")
    losses = ("loss_source_total", "loss_mixed_total", "loss_adversarial", "loss_entropy")
    quantities = [q for q in (*losses, "val_miou") if q in set(curves["quantity"])]
    return {"training_curves": charts.curves_figure(curves, quantities, row_labels(profile, keys))}


# Each notebook's folder -> its figures drawn from what is in it (each drawer repeats the calls of
# the notebook's cells, from the CSVs those cells wrote).
NOTEBOOKS: dict[str, Callable[[Path], dict]] = {
    "00_imagenet_stand_in": _stand_in,
    "01_data_preparation": _data_preparation,
    "03_scale_attention": _scale_attention,
    "04_ablation_crop_sizes": _crop_sizes,
    "05_ablation_components": _components,
    "06_full_training": _full_training,
    "07_figures_tables": _figures_tables,
    "09_uda_methods": _uda_methods,
}


def redraw(results: Path) -> list[Path]:
    """Re-draw the figures of every notebook folder under `results` that has a `config.json`."""
    written = []
    for stem, draw in NOTEBOOKS.items():
        folder = Path(results) / stem
        if not (folder / "config.json").is_file():
            continue
        for name, fig in draw(folder).items():
            written.append(save_figure(fig, folder / f"{name}.png"))
            plt.close(fig)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=results_root())
    for path in redraw(parser.parse_args(argv).results):
        print(path)


if __name__ == "__main__":
    main()
