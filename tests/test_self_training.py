"""The drawn self-training iteration (`self_training.drawn_step`) is the one `train_step` makes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hrda_lib.data_setup import build_train_loader
from hrda_lib.model import build_segmentor
from hrda_lib.reproduction.catalogue import get_profile, row_config
from hrda_lib.reproduction.self_training import drawn_step, recipe_figure, state_of


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HRDA_DATA", str(tmp_path_factory.mktemp("data")))
        cfg = row_config(get_profile("smoke"), "mic_hrda", 0)
        torch.manual_seed(0)
        state = state_of(cfg, build_segmentor(cfg.model), iteration=2)
        weights = {k: v.clone() for k, v in state.model.state_dict().items()}
        batch = next(iter(build_train_loader(cfg, start=4)))
        step = drawn_step(state, batch, cfg)
    return cfg, state, weights, batch, step


def test_the_drawn_mixed_image_is_the_one_train_step_trains_on(drawn) -> None:
    _, _, _, _, step = drawn
    assert step.mixed_loss_drawn == pytest.approx(step.losses["loss_mixed_total"], abs=1e-6)
    assert step.quality == pytest.approx(step.losses["pseudo_weight"])
    assert "loss_mic_total" in step.losses and step.masked is not None


def test_drawing_leaves_the_state_as_it_was(drawn) -> None:
    _, state, weights, _, _ = drawn
    assert state.iteration == 2
    assert all(torch.equal(v, weights[k]) for k, v in state.model.state_dict().items())


def test_the_mixed_label_takes_the_source_where_the_mask_is_set(drawn) -> None:
    _, _, _, batch, step = drawn
    source_label = batch["gt_semantic_seg"][0].numpy()
    assert np.array_equal(step.mixed_label[step.mix_mask], source_label[step.mix_mask])
    assert np.array_equal(step.mixed_label[~step.mix_mask], step.pseudo_label[~step.mix_mask])
    assert (step.mixed_weight[step.mix_mask] == 1).all()
    assert step.pseudo_weight.max() == pytest.approx(step.quality)


def test_the_figure_shows_every_part_in_words(drawn) -> None:
    *_, step = drawn
    fig = recipe_figure(step)
    titles = " ".join(ax.get_title() for ax in fig.axes)
    for part in ("source crop", "pseudo-label", "confidence", "ClassMix", "augmentation", "MIC"):
        assert part in titles
    assert "MIC" in fig._suptitle.get_text() and "mixed (weighted)" in fig._suptitle.get_text()
    assert fig.legends and "road" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_a_method_without_a_teacher_is_refused() -> None:
    cfg = row_config(get_profile("smoke"), "source_only", 0)
    state = state_of(cfg, build_segmentor(cfg.model), iteration=0)
    with pytest.raises(ValueError, match="does not self-train"):
        drawn_step(state, {}, cfg)
