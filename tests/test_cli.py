"""A newcomer's bad inputs and faults: each command line fails before any work with one line
(no traceback) naming the argument or file, what was wrong and what to do, and leaves nothing
else on disk; nothing is lost or mislabelled (locks, divergence, a full disk); `predict` takes
any image a user has."""

from __future__ import annotations

import errno
import os
import shutil
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import train_smoke_checkpoint
from PIL import Image

from hrda_lib import checkpoints, cli, evaluate, predict, train
from hrda_lib import step as step_module
from hrda_lib.config import with_iters
from hrda_lib.files import DiskFullError
from hrda_lib.guards import DivergedError
from hrda_lib.layout import DatasetLayoutError
from hrda_lib.paths import REPO_ROOT
from hrda_lib.presets import get_preset


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def _fails(capsys, main, argv: list[str], *expected: str) -> str:
    """Run a command line that must fail with exit status 2 and one message (no traceback)."""
    with pytest.raises(SystemExit) as exited:
        cli.run(main, argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for text in expected:
        assert text in err, (text, err)
    return err


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-iteration smoke HRDA run: a real training checkpoint of our format."""
    return train_smoke_checkpoint(tmp_path_factory, "smoke_run", iters=2)


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_root: Path) -> Path:
    """A data root holding a copy of the tiny synthetic set where the smoke presets find it."""
    root = tmp_path / "data"
    shutil.copytree(tiny_root, root / "synthetic_tiny_s0")
    monkeypatch.setenv("HRDA_DATA", str(root))
    return root


# -- train ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["smoke_hrda", "--set", "seed=abc"], ("--set seed=abc", "seed takes int", "'abc'")),
        (["smoke_hrda", "--set", "model.context_scale=half"], ("context_scale takes float",)),
        (["smoke_hrda", "--set", "model.context_scale=3"], ("context_scale must be in (0, 1]",)),
        (["smoke_hrda", "--set", "uda.method=fda"], ("unknown UDA method 'fda'", "dacs")),
        (["smoke_hrdaa"], ("unknown preset 'smoke_hrdaa'", "--list")),
        (["smoke_hrda", "--resume"], ("--resume", "does not exist", "--work-dir")),
        (["smoke_hrda", "--iters", "0"], ("--iters", "at least 1")),
        (["smoke_hrda", "--iters", "-5"], ("--iters", "at least 1")),
    ],
)
def test_train_rejects_bad_arguments_before_any_work(
    argv: list[str], expected: tuple[str, ...], tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _fails(capsys, train.main, [*argv, "--work-dir", str(tmp_path / "run")], *expected)
    assert _files(tmp_path) == set()  # no work dir, no data, nothing


def test_a_second_training_in_the_same_work_dir_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "run").mkdir()
    lock = tmp_path / "run" / ".lock"
    lock.write_text(f"{os.getppid()} {os.uname().nodename}")  # a live process holds it
    _fails(capsys, train.main, ["smoke_hrda", "--work-dir", str(tmp_path / "run")], "in use")
    assert _files(tmp_path) == {tmp_path / "run", lock}


def test_a_stale_lock_is_taken_over(tmp_path: Path, data_root: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").write_text(f"999999999 {os.uname().nodename}")  # no such pid
    train.train(get_preset("smoke_hrda"), tmp_path / "run", iters=1, progress=False)
    assert (tmp_path / "run" / "latest.pth").is_file()
    assert not (tmp_path / "run" / ".lock").exists()  # released at the end


def test_resuming_another_architecture_is_one_line(tmp_path: Path, data_root: Path, capsys):
    train.train(get_preset("smoke_hrda"), tmp_path / "run", iters=1, progress=False)
    before = (tmp_path / "run" / "latest.pth").read_bytes()
    argv = ["smoke_daformer_lr", "--work-dir", str(tmp_path / "run"), "--resume", "--iters", "2"]
    _fails(capsys, train.main, argv, "holds a run of another model", "multi_resolution")
    assert (tmp_path / "run" / "latest.pth").read_bytes() == before


def test_divergence_stops_and_keeps_the_checkpoint_from_before(
    tmp_path: Path, data_root: Path, monkeypatch
) -> None:
    cfg = replace(get_preset("smoke_source_only"), checkpoint_interval=1)
    real_step = step_module.train_step

    def exploding(state, batch, cfg, *shard):  # weights blow up at the 3rd iteration
        logs = real_step(state, batch, cfg, *shard)
        if state.iteration == 3:
            with torch.no_grad():
                for param in state.model.parameters():
                    param.mul_(1e6)
        return logs

    monkeypatch.setattr(train, "train_step", exploding)
    with pytest.raises(DivergedError, match=r"iteration 3: weight norm .*\(iteration 2\)"):
        train.train(cfg, tmp_path / "run", progress=False)
    saved = torch.load(tmp_path / "run" / "latest.pth", weights_only=False)
    assert saved["state"]["iteration"] == 2
    assert all(torch.isfinite(v).all() for v in saved["state"]["model"].values())


def test_a_loss_spike_is_a_divergence(tmp_path: Path, data_root: Path, monkeypatch) -> None:
    cfg = with_iters(get_preset("smoke_source_only"), 30)
    cfg = replace(cfg, checkpoint_interval=1, eval_interval=100)
    real_loss = step_module.segmentation_loss
    calls = {"n": 0}

    def spiking(out, label, model_cfg, weight=None):
        calls["n"] += 1
        losses = real_loss(out, label, model_cfg, weight)
        if calls["n"] == 26:
            losses = {k: v * 1000 for k, v in losses.items()}
        return losses

    monkeypatch.setattr(step_module, "segmentation_loss", spiking)
    with pytest.raises(DivergedError, match="iteration 26: loss_source_total .* running level"):
        train.train(cfg, tmp_path / "run", progress=False)
    assert (
        torch.load(tmp_path / "run" / "latest.pth", weights_only=False)["state"]["iteration"] == 25
    )


def test_bad_labels_and_corrupt_images_are_found_before_training(
    tmp_path: Path, data_root: Path
) -> None:
    gta = data_root / "synthetic_tiny_s0" / "gta"
    label = sorted((gta / "labels").glob("*_labelTrainIds.png"))[3]
    array = np.array(Image.open(label))
    array[0, 0] = 42
    Image.fromarray(array).save(label)
    with pytest.raises(DatasetLayoutError, match="ids outside the 19 train ids") as caught:
        train.train(get_preset("smoke_hrda"), tmp_path / "run", progress=False)
    assert str(label) in str(caught.value) and "[42]" in str(caught.value)
    assert not (tmp_path / "run" / "latest.pth").exists()
    array[0, 0] = 0
    Image.fromarray(array).save(label)
    image = sorted((gta / "images").glob("*.png"))[5]
    image.write_bytes(image.read_bytes()[:100])  # truncated
    with pytest.raises(DatasetLayoutError, match="cannot be decoded") as caught:
        train.train(get_preset("smoke_hrda"), tmp_path / "run2", progress=False)
    assert str(image) in str(caught.value)


def test_the_data_check_is_remembered(tmp_path: Path, data_root: Path, monkeypatch) -> None:
    train.train(get_preset("smoke_hrda"), tmp_path / "a", iters=1, progress=False)
    calls = []
    monkeypatch.setattr(
        "hrda_lib.data_setup.check_contents", lambda *args, **kwargs: calls.append(args)
    )
    train.train(get_preset("smoke_hrda"), tmp_path / "b", iters=1, progress=False)
    assert calls == []  # same files: not decoded again


def test_a_full_disk_is_named_and_leaves_no_partial_file(
    tmp_path: Path, data_root: Path, monkeypatch, capsys
) -> None:
    def full(obj, path, *args, **kwargs):
        Path(path).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints.torch, "save", full)
    with pytest.raises(DiskFullError, match="disk full while writing .*latest.pth"):
        train.train(get_preset("smoke_hrda"), tmp_path / "run", iters=1, progress=False)
    assert (
        not list((tmp_path / "run").glob("*.tmp"))
        and not (tmp_path / "run" / "latest.pth").exists()
    )


def test_an_unwritable_work_dir_is_one_line(tmp_path: Path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["smoke_hrda", "--work-dir", str(blocker / "run")]
    _fails(capsys, train.main, argv, f"cannot use {blocker / 'run'}: Not a directory")


def test_a_file_that_could_not_be_read_is_not_called_unwritable() -> None:
    # Tests run as root, which reads any file: the errors a user without rights would get.
    denied = PermissionError(errno.EACCES, "Permission denied", "/their/model.pth")
    assert cli.message(denied).startswith("cannot use /their/model.pth: permission denied")
    assert "write" not in cli.message(denied).split("(")[0]
    missing = FileNotFoundError(errno.ENOENT, "No such file or directory", "/their/in.png")
    assert cli.message(missing) == "cannot use /their/in.png: No such file or directory"


def test_internal_value_and_key_errors_keep_their_traceback(capsys) -> None:
    def broken(argv):
        raise ValueError("shapes differ: a bug of ours, not the user's")

    with pytest.raises(ValueError, match="a bug of ours"):
        cli.run(broken, [])
    with pytest.raises(KeyError):
        cli.run(lambda argv: {}["missing"], [])

    def unknown(argv):
        raise cli.UnknownNameError("unknown preset 'x'; `--list` shows them all")

    _fails(capsys, unknown, [], "error: unknown preset 'x'; `--list`")  # no quotes around it


# -- evaluate ---------------------------------------------------------------------------------


def test_evaluate_names_bad_checkpoint_files(tmp_path: Path, capsys) -> None:
    _fails(capsys, evaluate.main, [str(tmp_path / "missing.pth")], "missing.pth", "no such")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    _fails(capsys, evaluate.main, [str(tmp_path / "tensor.pth")], "holds a Tensor, not a")
    torch.save({"weight": torch.zeros(3)}, tmp_path / "random.pth")
    _fails(capsys, evaluate.main, [str(tmp_path / "random.pth")], "random.pth is neither")
    good = tmp_path / "good.pth"
    torch.save({"state_dict": {"x": torch.zeros(1000)}}, good)
    (tmp_path / "truncated.pth").write_bytes(good.read_bytes()[:200])
    _fails(capsys, evaluate.main, [str(tmp_path / "truncated.pth")], "truncated.pth", "truncated")
    assert {p.name for p in tmp_path.iterdir()} == {
        "tensor.pth",
        "random.pth",
        "good.pth",
        "truncated.pth",
    }


def test_evaluate_refuses_a_data_root_it_would_ignore(
    smoke_run: Path, tmp_path: Path, capsys
) -> None:
    argv = [str(smoke_run), "--data-root", str(tmp_path / "mine")]
    _fails(capsys, evaluate.main, argv, "trained on the synthetic benchmark", "--dataset")
    assert not (tmp_path / "mine").exists()


def test_evaluate_bad_values_and_names(smoke_run: Path, capsys) -> None:
    _fails(capsys, evaluate.main, [str(smoke_run), "--max-batch", "0"], "--max-batch")
    _fails(
        capsys,
        evaluate.main,
        [str(smoke_run), "--dataset", "kitti"],
        "invalid choice",
        "cityscapes",
    )
    official = str(REPO_ROOT / "tests" / "golden" / "hrda_mitb0" / "checkpoint.pth")
    _fails(capsys, evaluate.main, [official], "official checkpoint: add --preset")


def test_evaluate_writes_where_it_is_told_and_says_so(
    smoke_run: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("HRDA_DATA", str(smoke_run.parent.parent / "data"))
    cli.run(evaluate.main, [str(smoke_run), "--out", str(tmp_path / "e"), "--save-images", "1"])
    assert f"wrote {tmp_path / 'e'}" in capsys.readouterr().out
    assert {"per_class.csv", "summary.json", "val_000_pred.png"} <= {
        p.name for p in (tmp_path / "e").iterdir()
    }
    monkeypatch.setenv("HRDA_RESULTS", str(tmp_path / "res"))
    cli.run(evaluate.main, [str(smoke_run), "--save-images", "0"])
    assert (tmp_path / "res" / "eval" / smoke_run.parent.name / "summary.json").is_file()


# -- predict ----------------------------------------------------------------------------------


def _jpeg_rotated(path: Path, array: np.ndarray) -> None:
    """A JPEG whose EXIF says: rotate 90° clockwise to view (orientation 6)."""
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, exif=exif)


def test_predict_takes_any_photo(smoke_run: Path, tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(0)
    images = tmp_path / "photos"
    (images / "a").mkdir(parents=True)
    (images / "b").mkdir()
    Image.fromarray(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8)).save(images / "a/x.png")
    Image.fromarray(rng.integers(0, 255, (97, 131), dtype=np.uint8)).save(images / "b/x.png")
    rgba = rng.integers(0, 255, (150, 260, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(images / "x.png")
    Image.fromarray(rng.integers(0, 255, (150, 260, 3), dtype=np.uint8)).save(images / "x.jpg")
    _jpeg_rotated(images / "turned.jpg", rng.integers(0, 255, (40, 70, 3), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 255, (1024, 2048, 3), dtype=np.uint8)).save(images / "big.png")
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(images / "tiny.png")
    (images / "broken.png").write_text("not an image")
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        cli.run(predict.main, [str(smoke_run), str(images), "--out", str(out)])
    assert exited.value.code == 1  # one unreadable file
    captured = capsys.readouterr()
    assert "skipped:" in captured.out and "broken.png" in captured.out
    assert "1 unreadable files skipped" in captured.out
    expected = {
        "a/x.png": (300, 500),
        "b/x.png": (97, 131),
        "x.png": (150, 260),
        "x.jpg": (150, 260),
        "turned.jpg": (70, 40),
        "big.png": (1024, 2048),
        "tiny.png": (20, 30),
    }
    for name, (h, w) in expected.items():
        for kind in ("pred", "overlay", "attention"):
            written = out / f"{name}_{kind}.png"
            assert written.is_file(), written
            assert Image.open(written).size == (w, h), (written, Image.open(written).size)
    assert len(list(out.rglob("*.png"))) == 3 * len(expected)  # one set per input, none collide


def test_predict_rejects_bad_values(smoke_run: Path, tmp_path: Path, capsys) -> None:
    image = tmp_path / "i.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(image)
    base = [str(smoke_run), str(image), "--out", str(tmp_path / "o")]
    _fails(capsys, predict.main, [*base, "--window", "0"], "--window", "at least 8")
    _fails(capsys, predict.main, [*base, "--max-batch", "0"], "--max-batch", "at least 1")
    three = [*base, "--window", "64", "64", "64"]
    _fails(capsys, predict.main, three, "--window takes one size (square) or two (H W), not 3")
    _fails(capsys, predict.main, [*base, "--stride", "8", "8", "8"], "--stride takes one size")
    _fails(
        capsys,
        predict.main,
        [str(smoke_run), str(tmp_path / "none"), "--out", "o"],
        "no such file or folder",
    )
    assert not (tmp_path / "o").exists()


def test_predict_into_its_input_folder_never_reads_its_outputs_back(
    smoke_run: Path, tmp_path: Path, capsys
) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(photos / "x.png")
    for _ in range(2):  # the second run finds the first one's outputs beside the photo
        cli.run(predict.main, [str(smoke_run), str(photos), "--out", str(photos)])
        assert "wrote 1 prediction sets" in capsys.readouterr().out
    assert sorted(p.name for p in photos.iterdir()) == [
        "x.png",
        "x.png_attention.png",
        "x.png_overlay.png",
        "x.png_pred.png",
    ]
    inside = tmp_path / "inside"  # an out folder inside the input folder, twice
    inside.mkdir()
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(inside / "y.png")
    for _ in range(2):
        cli.run(predict.main, [str(smoke_run), str(inside), "--out", str(inside / "out")])
        assert "wrote 1 prediction sets" in capsys.readouterr().out


# -- Ctrl-C and resuming another experiment ----------------------------------------------------


def test_ctrl_c_ends_training_with_one_line_and_a_checkpoint_that_resumes_exactly(
    tmp_path: Path, data_root: Path, monkeypatch, capsys
) -> None:
    cfg = replace(get_preset("smoke_source_only"), checkpoint_interval=100, eval_interval=100)
    full = train.train(cfg, tmp_path / "full", iters=4, progress=False)
    real_step = step_module.train_step

    def interrupted(state, batch, cfg, *shard):  # Ctrl-C during the 2nd iteration
        logs = real_step(state, batch, cfg, *shard)
        if state.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    monkeypatch.setattr(train, "train_step", interrupted)
    argv = ["smoke_source_only", "--work-dir", str(tmp_path / "run"), "--iters", "4"]
    argv += ["--set", "checkpoint_interval=100", "eval_interval=100"]
    with pytest.raises(SystemExit) as exited:
        cli.run(train.main, argv)
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"interrupted: interrupted at iteration 2 of 4: {tmp_path / 'run' / 'latest.pth'}" in err
    assert torch.load(tmp_path / "run" / "latest.pth", weights_only=True)["state"]["iteration"] == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    monkeypatch.setattr(train, "train_step", real_step)
    cli.run(train.main, [*argv, "--resume"])
    a = torch.load(full.checkpoint, weights_only=True)["state"]["model"]
    b = torch.load(tmp_path / "run" / "latest.pth", weights_only=True)["state"]["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resuming_with_another_seed_schedule_data_or_uda_setting_is_refused(
    tmp_path: Path, data_root: Path, capsys
) -> None:
    cfg = get_preset("smoke_hrda")
    train.train(cfg, tmp_path / "run", iters=1, progress=False)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    base = ["smoke_hrda", "--work-dir", str(tmp_path / "run"), "--resume"]
    for change, named in (
        (["--set", "seed=1"], "seed differ"),
        (["--iters", "2"], "iters"),
        (["--set", "data.target=cityscapes"], "data.target"),
        (["--set", "uda.pseudo_threshold=0.5"], "uda.pseudo_threshold differ"),
    ):
        _fails(capsys, train.main, [*base, "--iters", "1", *change], "another experiment", named)
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before  # config.json and the checkpoint untouched
    # How often it validates and saves may change: a finished run is returned as it is.
    cli.run(train.main, [*base, "--iters", "1", "--set", "eval_interval=7"])
    assert "done:" in capsys.readouterr().out
