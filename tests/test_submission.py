"""Test-server submissions (`hrda_lib.submission`, `evaluate --format-only`): a tiny trained
model predicts 3-image test splits of Cityscapes, ACDC and Dark Zurich in their layouts."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import train_smoke_checkpoint
from PIL import Image

from hrda_lib import cli, evaluate, submission
from hrda_lib.checkpoints import load_model
from hrda_lib.conversion import TRAIN_ID_TO_CITYSCAPES_ID
from hrda_lib.inference import predict_logits
from hrda_lib.presets import get_preset

# (H, W) of the three test images: the first at the smoke test scale (128, 64), the others
# larger, so that predictions must be resized back to the original size.
SIZES = [(64, 128), (96, 192), (80, 160)]
LABEL_IDS = sorted(TRAIN_ID_TO_CITYSCAPES_ID.values())  # 7, 8, 11, ..., 33


def _image_paths(root: Path, dataset: str) -> list[Path]:
    """Where the three test images of `dataset` live in its official layout."""
    if dataset == "cityscapes":
        city = ["berlin", "berlin", "bonn"]
        return [
            root / "leftImg8bit" / "test" / c / f"{c}_000000_00000{i}_leftImg8bit.png"
            for i, c in enumerate(city)
        ]
    if dataset == "acdc":  # flattened per split (HRDA README)
        return [
            root / "rgb_anon" / "test" / f"GOPR0001_frame_00000{i}_rgb_anon.png" for i in range(3)
        ]
    return [
        root / "rgb_anon" / "test" / "night" / "GOPR0356" / f"GOPR0356_frame_00000{i}_rgb_anon.png"
        for i in range(3)
    ]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with 3 random test images per dataset (no labels, as on the servers)."""
    root = tmp_path_factory.mktemp("submission_data")
    rng = np.random.default_rng(0)
    for dataset in submission.SUBMISSION_FORMATS:
        for path, (height, width) in zip(_image_paths(root / dataset, dataset), SIZES, strict=True):
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-iteration smoke HRDA run (a real training checkpoint with its config)."""
    return train_smoke_checkpoint(tmp_path_factory, "submission_run", iters=1)


def _submit(checkpoint: Path, data: Path, dataset: str, out: Path) -> zipfile.ZipFile:
    evaluate.main(
        [str(checkpoint), "--format-only", "--dataset", dataset, "--data-root", str(data)]
        + ["--out", str(out)]
    )
    return zipfile.ZipFile(out / f"submission_{dataset}.zip")


def _png(archive: zipfile.ZipFile, name: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(archive.read(name))))


def _expected_train_ids(checkpoint: Path, data: Path, dataset: str, index: int) -> np.ndarray:
    """The prediction of image `index` computed directly: slide inference, original size."""
    cfg = get_preset("smoke_hrda")
    images = submission.read_test_split(dataset, data, cfg.data.test_pipeline)
    sample = images[index]
    height, width = SIZES[index]
    logits = predict_logits(
        load_model(checkpoint),
        sample["img"][None],
        cfg.test_window,
        cfg.test_stride,
        (height, width),
    )
    return logits.argmax(1)[0].numpy()


def test_train_ids_map_to_cityscapes_label_ids() -> None:
    label_ids = submission.train_ids_to_label_ids(np.arange(19, dtype=np.uint8)[None])
    assert label_ids.tolist() == [LABEL_IDS]
    assert label_ids.dtype == np.uint8


def test_cityscapes_submission_holds_label_ids_named_like_the_images(
    checkpoint: Path, data: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    archive = _submit(checkpoint, data, "cityscapes", tmp_path)
    names = [p.name for p in _image_paths(data / "cityscapes", "cityscapes")]
    assert sorted(archive.namelist()) == sorted(names)  # flat, `<city>_<seq>_<frame>_leftImg8bit`
    for name, size in zip(names, SIZES, strict=True):
        prediction = _png(archive, name)
        assert prediction.shape == size and prediction.dtype == np.uint8
        assert set(np.unique(prediction)) <= set(LABEL_IDS)
    expected = submission.train_ids_to_label_ids(
        _expected_train_ids(checkpoint, data, "cityscapes", 1)
    )
    np.testing.assert_array_equal(_png(archive, names[1]), expected)
    assert "submission_cityscapes.zip" in capsys.readouterr().out


def test_acdc_submission_holds_train_ids(checkpoint: Path, data: Path, tmp_path: Path) -> None:
    archive = _submit(checkpoint, data, "acdc", tmp_path)
    names = [p.name for p in _image_paths(data / "acdc", "acdc")]
    assert sorted(archive.namelist()) == sorted(names)
    for name, size in zip(names, SIZES, strict=True):
        prediction = _png(archive, name)
        assert prediction.shape == size and prediction.max() <= 18
    expected = _expected_train_ids(checkpoint, data, "acdc", 2)
    np.testing.assert_array_equal(_png(archive, names[2]), expected)


def test_dark_zurich_submission_has_the_three_codalab_folders(
    checkpoint: Path, data: Path, tmp_path: Path
) -> None:
    archive = _submit(checkpoint, data, "dark_zurich", tmp_path)
    names = [p.name for p in _image_paths(data / "dark_zurich", "dark_zurich")]
    folders = ("labelTrainIds", "labelTrainIds_invalid", "confidence")
    assert sorted(archive.namelist()) == sorted(f"{f}/{n}" for f in folders for n in names)
    for name, size in zip(names, SIZES, strict=True):
        labels = _png(archive, f"labelTrainIds/{name}")
        assert labels.shape == size and labels.dtype == np.uint8 and labels.max() <= 18
        np.testing.assert_array_equal(_png(archive, f"labelTrainIds_invalid/{name}"), labels)
        confidence = np.asarray(Image.open(io.BytesIO(archive.read(f"confidence/{name}"))))
        assert confidence.shape == size and confidence.dtype.itemsize == 2  # 16-bit PNG
        assert confidence.min() >= 65535 // 19 and confidence.max() <= 65535
    expected = _expected_train_ids(checkpoint, data, "dark_zurich", 0)
    np.testing.assert_array_equal(_png(archive, f"labelTrainIds/{names[0]}"), expected)


def test_a_missing_prediction_file_fails_the_count_check(
    checkpoint: Path,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    write = submission.atomic_write_bytes

    def drop_one(path: Path, content: bytes) -> None:  # a write that silently went missing
        if "000001" not in Path(path).name:
            write(path, content)

    monkeypatch.setattr(submission, "atomic_write_bytes", drop_one)
    argv = [str(checkpoint), "--format-only", "--dataset", "acdc", "--data-root", str(data)]
    with pytest.raises(SystemExit) as exited:
        cli.run(evaluate.main, [*argv, "--out", str(tmp_path)])
    assert exited.value.code == 2
    assert "2 prediction files written for 3 test images" in capsys.readouterr().err
    assert not (tmp_path / "submission_acdc.zip").exists()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "no --dataset given"),
        (["--dataset", "bdd100k"], "got --dataset bdd100k"),
        (["--dataset", "acdc", "--max-images", "2"], "drop --max-images"),
    ],
)
def test_format_only_needs_a_dataset_with_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as exited:  # fails before the checkpoint is even read
        cli.run(evaluate.main, [str(tmp_path / "none.pth"), "--format-only", *extra])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "--format-only" in err and expected in err and "Traceback" not in err
