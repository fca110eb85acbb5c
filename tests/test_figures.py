"""Figures read right: every label a person reads is words (no column names, row keys or Python
booleans), a run keeps its colour across panels, a missing value is never a 0 bar, labels do not
overlap; and `reproduction.redraw` re-draws the committed figures from their CSVs."""

import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle

from hrda_lib import charts, plots
from hrda_lib.classes import CLASSES
from hrda_lib.reproduction import redraw
from hrda_lib.reproduction.catalogue import ROW_NAMES
from hrda_lib.viz import words

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def legend_texts(fig) -> list[str]:
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
    return [t.get_text() for legend in legends for t in legend.get_texts()]


def tidy_curves(keys: list[str], seeds: list[int], quantities: list[str]) -> pd.DataFrame:
    """A log whose first value tells the run (its index) and the panel apart."""
    rows = [
        (key, seed, it, q, 100 * run + j + it / 1000)
        for run, (key, seed) in enumerate((k, s) for k in keys for s in seeds)
        for j, q in enumerate(quantities)
        for it in (100, 200, 300)
    ]
    return pd.DataFrame(rows, columns=["key", "seed", "iteration", "quantity", "value"])


def test_curves_keep_a_colour_per_row_across_panels_and_one_legend():
    keys, seeds = ["source_only", "daformer_lr", "hrda"], [0, 1]
    quantities = ["pseudo_weight", "val_miou", "val_aacc", "seconds_per_iter"]
    fig = charts.curves_figure(tidy_curves(keys, seeds, quantities), quantities)
    panels = [ax for ax in fig.axes if ax.lines]
    assert len(panels) == 4
    colour_of_run = [{}, {}]  # run index -> colour, line style
    for ax in panels:
        for line in ax.lines:
            run = int(line.get_ydata()[0] // 100)
            key_colour, seed_style = colour_of_run
            assert key_colour.setdefault(run // 2, line.get_color()) == line.get_color()
            assert seed_style.setdefault(run % 2, line.get_linestyle()) == line.get_linestyle()
    assert len(set(colour_of_run[0].values())) == 3 and len(set(colour_of_run[1].values())) == 2
    assert sum(ax.get_legend() is not None for ax in fig.axes) + len(fig.legends) == 1
    texts = legend_texts(fig)
    assert texts == [ROW_NAMES[k] for k in keys] + ["seed 0", "seed 1"]
    titles = [ax.get_title() for ax in panels]
    assert not any("_" in t for t in titles), titles


def test_curves_tell_apart_fifteen_rows_and_rows_of_one_name():
    others = [k for k in ROW_NAMES if not k.startswith(("oracle", "dg_", "hrda_context"))]
    keys = others[:14] + ["hrda_context0.5"]  # 15 rows, two of them called "HRDA"
    fig = charts.curves_figure(tidy_curves(keys, [0], ["val_miou"]), ["val_miou"])
    colours = {tuple(plt.matplotlib.colors.to_rgba(line.get_color())) for line in fig.axes[0].lines}
    assert len(colours) == 15
    texts = legend_texts(fig)
    assert len(set(texts)) == 15 and not set(texts) & set(keys)
    labelled = charts.curves_figure(
        tidy_curves(["hrda", "hrda_context0.5"], [0], ["val_miou"]),
        ["val_miou"],
        {"hrda": "HRDA — LR1.0 + HR0.5", "hrda_context0.5": "HRDA — LR0.5 + HR0.5"},
    )
    assert legend_texts(labelled) == ["HRDA — LR1.0 + HR0.5", "HRDA — LR0.5 + HR0.5"]


def class_table(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"class": list(values), "value": list(values.values())})


def bar_centres(ax) -> np.ndarray:
    return np.array([p.get_x() + p.get_width() / 2 for p in ax.patches if type(p) is Rectangle])


def test_class_bars_mark_a_missing_value_and_draw_a_measured_zero():
    values = {c: 0.5 for c in CLASSES} | {"traffic light": np.nan, "sky": 0.0}
    ax = plots.class_bars(class_table(values), "value").axes[0]
    light, sky = CLASSES.index("traffic light"), CLASSES.index("sky")
    centres = bar_centres(ax)
    assert len(centres) == len(CLASSES) - 1
    assert not np.isclose(centres, light).any() and np.isclose(centres, sky).any()
    marks = [t for t in ax.texts if t.get_text() == "n/a"]
    assert [t.get_position()[0] for t in marks] == [light]
    absent = class_table({"road": 1.0})  # a class without a line is missing too
    assert sum(t.get_text() == "n/a" for t in plots.class_bars(absent, "value").axes[0].texts) == 18


def test_class_bars_name_groups_in_words_and_centre_lone_bars():
    table = class_table({c: i - 9.0 for i, c in enumerate(CLASSES)})
    table["thin"] = table["class"].isin(["pole", "person", "rider"])
    fig = plots.class_bars(table, "value", hue="thin")
    assert legend_texts(fig) == ["other class", "thin class"]
    assert np.allclose(np.sort(bar_centres(fig.axes[0])), np.arange(len(CLASSES)))
    rcs = pd.concat(
        class_table({c: 0.05 for c in CLASSES}).assign(quantity=f"rcs_probability_T{t}")
        for t in ("0.01", "1")
    )
    texts = legend_texts(plots.class_bars(rcs, "value", hue="quantity"))
    assert texts == ["RCS, temperature T = 0.01", "RCS, temperature T = 1"]
    branches = class_table({"road": 1.0}).assign(branch="IoU_context")
    fig = plots.class_bars(branches, "value", hue="branch")
    assert legend_texts(fig) == ["context (LR) branch"] and fig.axes[0].get_ylabel() == "value"


def test_words_never_return_a_raw_name():
    for name in ("loss_source_total", "val_miou", "memory_mb", "oracle_iou_x2", "IoU_fused"):
        assert "_" not in words(name) and words(name) != name


def test_tradeoff_labels_do_not_overlap_and_axis_reads_words():
    labels = [f"HRDA — LR{c} + HR{d}" for c in (0.5, 0.75, 1.0) for d in (0.25, 0.375, 0.5)]
    summary = pd.DataFrame(
        {
            "label": labels + ["DAFormer (LR data) — LR1.0"],
            "memory_mb": [50 + i for i in range(9)] + [51],
            "mean": [40 + 0.2 * i for i in range(9)] + [40.3],
            "std": [1.0] * 10,
        }
    )
    fig = charts.tradeoff_figure(summary, "memory_mb")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training memory (MB)"
    assert legend_texts(fig) == ["HRDA", "DAFormer (LR data)"]
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in ax.texts]
    assert [t.get_text() for t in ax.texts] == [label.split(" — ")[1] for label in summary["label"]]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :])


def test_main_comparison_titles_do_not_overlap():
    ours = "ours: mIoU (%) on synthetic 'quick' benchmark, target val (30 images, 256x512), "
    ours += "profile synthetic, seeds 0, 1, 2, 1500 iterations"  # 06's, as committed
    theirs = "published: mIoU (%) on GTA→Cityscapes val (19 classes), MiT-b5, 40k iterations"
    methods = ["HRDA, averaging (attention 0.5) — LR1.0 + HR0.5", "MIC (HRDA) — LR1.0 + HR0.5"]
    table = pd.DataFrame(
        {"method": methods, "mean": [40.0, 45.0], "std": [1.0, np.nan]}
        | {ours: ["40 ± 1", "45"], theirs: [np.nan, 73.8]}
    )
    fig = charts.ours_and_published_figure(table)
    fig.canvas.draw()
    left, right = (ax.title.get_window_extent() for ax in fig.axes)
    assert not left.overlaps(right)


def test_branch_rows_show_the_class_colours_and_image_grid_names_rows():
    rng = np.random.default_rng(0)
    sample = {name: rng.integers(0, 19, (8, 16)) for name in ("label", "context", "detail")}
    sample |= {"fused": sample["label"], "image": np.zeros((8, 16, 3), np.uint8)}
    fig = plots.branch_rows([sample | {"attention": rng.random((8, 16))}])
    assert legend_texts(fig) == list(CLASSES)
    fig = plots.image_grid([[np.zeros((4, 4, 3))]] * 2, [""], row_titles=["road", "sky"])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["road", "sky"]


def test_redraw_draws_the_committed_figures_from_their_csvs(tmp_path):
    results = REPO / "results"
    for stem in redraw.NOTEBOOKS:
        folder = results / stem
        (tmp_path / stem).mkdir()
        for path in [folder / "config.json", *folder.glob("*.csv")]:
            shutil.copy(path, tmp_path / stem)
        for log in folder.glob("runs/*_seed0/metrics.csv"):
            (tmp_path / log.parent.relative_to(results)).mkdir(parents=True)
            shutil.copy(log, tmp_path / log.relative_to(results))
    redraw.main(["--results", str(tmp_path)])
    drawn = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.glob("*/*.png"))
    assert drawn == [
        "00_imagenet_stand_in/with_and_without.png",
        "01_data_preparation/class_frequencies.png",
        "01_data_preparation/rcs.png",
        "01_data_preparation/resolution_oracle.png",
        "03_scale_attention/attention_per_class.png",
        "03_scale_attention/branch_iou.png",
        "04_ablation_crop_sizes/cost_tradeoff.png",
        "05_ablation_components/curves.png",
        "06_full_training/main_comparison.png",
        "06_full_training/training_curves.png",
        "07_figures_tables/class_differences.png",
        "07_figures_tables/main_comparison.png",
        "09_uda_methods/training_curves.png",
    ]
    assert all((tmp_path / p).read_bytes()[:4] == b"\x89PNG" for p in drawn)
