"""An experiment: model, data, self-training recipe, optimizer and schedule, in frozen dataclasses.

The UDA recipe is DAFormer's as HRDA uses it (reference spec 3 and 4): an EMA teacher whose
pseudo-labels are weighted by one quality scalar per batch, ClassMix with strong augmentation,
ImageNet feature distance on thing classes, rare class sampling, and optionally MIC's masked
image consistency. The other methods of Table 2 (AdvSeg, MinEnt) and domain generalization
(source only with photometric augmentation and SHADE style hallucination, evaluated on unseen
datasets) are `UDAConfig.method` / `UDAConfig.shade` choices. Presets (`hrda_lib.presets`) are
plain functions returning these.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from hrda_lib.alignment import AdversarialConfig
from hrda_lib.classes import THING_CLASSES
from hrda_lib.config import ModelConfig
from hrda_lib.optim import OptimizerConfig
from hrda_lib.rcs import RCSConfig
from hrda_lib.shade import SHADEConfig
from hrda_lib.transforms import PipelineConfig


@dataclass(frozen=True)
class DataConfig:
    """Which datasets, where, and through which pipelines."""

    source: str = "gta"  # gta | synthia | cityscapes | synthetic (GTA layout)
    target: str | None = "cityscapes"  # cityscapes | acdc | dark_zurich | synthetic (for DG:
    # only validated on) | None
    root: str = ""  # data root; "" = hrda_lib.paths.data_root() (synthetic: its default root)
    synthetic_variant: str = "quick"  # tiny | quick, for source/target "synthetic"
    synthetic_seed: int = 0  # generator seed of the synthetic benchmark
    source_pipeline: PipelineConfig = PipelineConfig(scale=(2560, 1440), crop_size=(1024, 1024),
                                                     cat_max_ratio=0.75)  # fmt: skip
    target_pipeline: PipelineConfig = PipelineConfig(scale=(2048, 1024), crop_size=(1024, 1024),
                                                     margins=(30, 240, 30, 30))  # fmt: skip
    test_pipeline: PipelineConfig = PipelineConfig(scale=(2048, 1024))  # target val
    rcs: RCSConfig | None = RCSConfig()  # rare class sampling (T 0.01, 3000 px, ratio 2.0)
    num_workers: int = 1  # data loader worker processes (0 = in the training process)


@dataclass(frozen=True)
class MICConfig:
    """Masked image consistency (Hoyer et al., CVPR 2023) on top of the UDA recipe."""

    mode: str = "separatetrgaug"  # which images are masked; "separate" for ACDC / Dark Zurich
    block_size: int = 64  # px of one mask block at full resolution
    ratio: float = 0.7  # fraction of blocks masked
    weight: float = 1.0  # lambda_m


DATASETS = ("gta", "synthia", "cityscapes", "acdc", "dark_zurich", "bdd100k", "mapillary")
UDA_METHODS = ("dacs", "advseg", "minent", "source_only")


@dataclass(frozen=True)
class UDAConfig:
    """DAFormer's self-training recipe as HRDA uses it, or another method of Table 2.

    `method`: "dacs" is the self-training of DACS / DAFormer (EMA teacher, ClassMix pseudo-labels;
    its other fields below); "advseg" and "minent" train on the target with an adversarial or an
    entropy loss instead (`hrda_lib.alignment`); "source_only" never looks at target images.
    """

    method: str = "dacs"  # dacs | advseg | minent | source_only
    ema_alpha: float = 0.999  # alpha: teacher = alpha*teacher + (1-alpha)*student
    pseudo_threshold: float = 0.968  # tau of the quality weight
    color_jitter_probability: float = 0.2  # jitter when u > p (probability 0.8)
    color_jitter_strength: float = 0.2  # s: brightness/contrast/saturation/hue range
    blur: bool = True  # Gaussian blur with probability 0.5
    fd_weight: float = 0.005  # lambda_fd of the ImageNet feature distance; 0 = off
    fd_classes: tuple[int, ...] = THING_CLASSES  # classes whose features are regularized
    fd_min_ratio: float = 0.75  # purity a feature cell needs
    fd_on_detail: bool = False  # also FD on the detail crop (feature_scale "all": detail=context)
    mic: MICConfig | None = None  # masked image consistency; None = off
    entropy_weight: float = 0.001  # lambda_ent of MinEnt
    adversarial: AdversarialConfig = AdversarialConfig()  # AdvSeg's discriminator
    shade: SHADEConfig | None = None  # SHADE style hallucination (domain generalization)

    def __post_init__(self) -> None:
        if self.method not in UDA_METHODS:
            raise ValueError(f"unknown UDA method {self.method!r}; expected one of {UDA_METHODS}")
        if self.mic is not None and self.method != "dacs":
            raise ValueError(
                "MIC is implemented on the self-training of method 'dacs' only (the MIC paper's "
                f"own teacher for {self.method} is not); set mic=None"
            )
        if self.shade is not None and self.method != "source_only":
            raise ValueError(
                "SHADE is domain generalization: it needs method 'source_only' (no target)"
            )

    @property
    def self_training(self) -> bool:
        """Whether an EMA teacher makes ClassMix pseudo-labels (method "dacs")."""
        return self.method == "dacs"

    @property
    def uses_target(self) -> bool:
        """Whether training reads target images (every method but source only)."""
        return self.method != "source_only"


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one training run needs; `replace(cfg, iters=...)` makes a variant."""

    name: str = "gta_to_cityscapes_hrda"
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    uda: UDAConfig = UDAConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    iters: int = 40000  # training iterations (also the schedule's length)
    batch_size: int = 2  # source images per iteration (and as many target images)
    seed: int = 0  # python / numpy / torch seed; the paper reports seeds 0, 1, 2
    pretrained: str = ""  # ImageNet weights of the encoder (mit_b5.pth); "" = random init
    test_window: tuple[int, int] = (1024, 1024)  # outer sliding window at evaluation
    test_stride: tuple[int, int] = (512, 512)  # its stride
    eval_interval: int = 4000  # iterations between validations on the target val set
    eval_max_images: int | None = None  # validate on the first N val images (None = all)
    checkpoint_interval: int = 4000  # iterations between checkpoints (and at the end)
    max_batch: int | None = None  # bound on images per encoder call at inference
    precision: str = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU | fp32 | bf16
    activation_checkpointing: bool = False  # recompute MiT blocks in backward (less memory)
    channels_last: bool = False  # NHWC memory format for convolutions
    compile: bool = False  # torch.compile the encoder and heads (compile time is reported)
    log_interval: int = 1  # iterations between host syncs for logging (GPU: 10-50)
    notes: str = ""  # what this preset reproduces and any deviation from the paper
    extra: dict[str, Any] = field(default_factory=dict)  # free-form tags (table, row)


def data_paths(cfg: DataConfig) -> dict[str, Path]:
    """Roots of the source and target datasets of `cfg`."""
    from hrda_lib.paths import data_root

    if "synthetic" in (cfg.source, cfg.target):
        from hrda_lib.synthetic import synthetic_root

        base = (
            Path(cfg.root)
            if cfg.root
            else synthetic_root(cfg.synthetic_variant, cfg.synthetic_seed)
        )
        paths = {"source": base / "gta", "target": base / "cityscapes"}
        if cfg.target not in (None, "synthetic"):  # a synthetic model on a real val set
            paths["target"] = (Path(cfg.root) if cfg.root else data_root()) / cfg.target
        return paths
    root = Path(cfg.root) if cfg.root else data_root()
    for name in (cfg.source, cfg.target):
        if name is not None and name not in DATASETS:
            raise ValueError(f"unknown dataset {name!r}; expected one of {DATASETS}")
    paths = {"source": root / cfg.source}  # the folder of a dataset is its name
    if cfg.target:
        paths["target"] = root / cfg.target
    return paths


def apply_overrides(cfg: ExperimentConfig, assignments: list[str]) -> ExperimentConfig:
    """Apply `--set field=value` overrides; dotted fields reach nested configs (model.attention).

    Values are parsed as Python literals where possible (`0.1`, `(64, 64)`, `None`, `True`).
    """
    import ast

    for assignment in assignments:
        if "=" not in assignment:
            raise ValueError(f"--set expects field=value, got {assignment!r}")
        path, raw = assignment.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        cfg = _replace_path(cfg, path.split("."), value)
    return cfg


def _replace_path(obj, path: list[str], value):
    names = {f.name for f in fields(obj)}
    if path[0] not in names:
        raise ValueError(f"{type(obj).__name__} has no field {path[0]!r}; fields: {sorted(names)}")
    if len(path) == 1:
        return replace(obj, **{path[0]: value})
    return replace(obj, **{path[0]: _replace_path(getattr(obj, path[0]), path[1:], value)})
