"""Mock GTA and Cityscapes for the rehearsal profile: a handful of synthetic scenes written at the
official resolutions, in the official layouts and label ids, then converted by the conversion a
user runs on the real sets (`convert_gta` and `convert_cityscapes`, what `data_scripts/gta.py`
and `data_scripts/cityscapes.py` call; they also write the rare-class-sampling statistics).

    gta/images/00001.png, gta/labels/00001.png             1914 x 1052, palette PNGs of label ids
    cityscapes/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png      2048 x 1024
    cityscapes/gtFine/{train,val}/<city>/*_gtFine_labelIds.png

So the readers, the conversion, the resizing to 2560 x 1440 and every crop and sliding window of
the `paper` profile run as they would on the real data; only the image content is synthetic.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from hrda_lib.conversion import convert_cityscapes, convert_gta
from hrda_lib.files import atomic_write_bytes
from hrda_lib.synthetic.benchmark import SOURCE, TARGET, SyntheticConfig, write_sample

GTA_SIZE = (1052, 1914)  # height, width of GTA5's images
CITYSCAPES_SIZE = (1024, 2048)
MARKER = "mock_real.json"


@dataclass(frozen=True)
class MockRealConfig:
    """How many images of each set the rehearsal writes (seconds each to draw)."""

    n_gta: int = 4
    n_cityscapes_train: int = 4
    n_cityscapes_val: int = 2
    seed: int = 0
    version: int = 1  # bumped when the mock changes, so that a stale set is not reused


def _jobs(root: Path, config: MockRealConfig) -> list[tuple]:
    gta = SyntheticConfig(*GTA_SIZE, n_source=config.n_gta, n_target_train=0, n_target_val=0)
    cityscapes = SyntheticConfig(
        *CITYSCAPES_SIZE,
        n_source=0,
        n_target_train=config.n_cityscapes_train,
        n_target_val=config.n_cityscapes_val,
    )
    jobs = [(root, gta, config.seed, SOURCE, "train", i) for i in range(config.n_gta)]
    jobs += [
        (root, cityscapes, config.seed, TARGET, "train", i)
        for i in range(config.n_cityscapes_train)
    ]
    jobs += [
        (root, cityscapes, config.seed, TARGET, "val", i) for i in range(config.n_cityscapes_val)
    ]
    return jobs


def ensure_mock_real(root: Path, config: MockRealConfig = MockRealConfig()) -> Path:
    """Write (if needed) and convert mock GTA and Cityscapes under `root` (`root/gta`,
    `root/cityscapes`); returns `root`. A finished set is recognized by its marker and kept;
    an interrupted one is completed (files already written are kept).

    Raises:
        FileExistsError: `root` holds real data, or a mock of another config.
    """
    root = Path(root)
    marker, wanted = root / MARKER, asdict(config)
    if marker.is_file():
        if json.loads(marker.read_text()) == wanted:
            return root
        raise FileExistsError(
            f"{root} holds a mock of another config ({marker.read_text()}): delete the folder "
            "to write it again"
        )
    if (root / "gta").exists() and not (root / ".mock_real_started").exists():
        raise FileExistsError(
            f"{root}/gta exists but is not a rehearsal mock: the rehearsal never writes into a "
            "folder of real data; point HRDA_DATA elsewhere"
        )
    root.mkdir(parents=True, exist_ok=True)
    (root / ".mock_real_started").touch()
    for job in _jobs(root, config):
        write_sample(job)
    convert_gta(root / "gta", nproc=1)
    convert_cityscapes(root / "cityscapes", nproc=1)
    atomic_write_bytes(marker, json.dumps(wanted).encode())
    return root
