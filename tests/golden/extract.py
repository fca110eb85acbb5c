"""Make this folder, the project's compact copy of the official code's golden fixtures.

    python tests/golden/extract.py ../shared/golden

From the fixtures of `shared/golden` (the official HRDA code's own outputs, see README.md here) it
keeps what the tests need: the student weights of the official-format checkpoint (the file holds
the student, the EMA teacher and the ImageNet model, which share one set of weights), the
recorded tensors the parity tests compare, and the small JSON files as they are. Every kept tensor
is stored bit for bit; `manifest.json` records the SHA-256 of each as read from the original, so
`tests/test_golden_parity.py` can prove the copy equals what was recorded.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
IO_KEYS = (
    "img_u8",
    "img_norm_mean",
    "img_norm_std",
    "train_crop_box",
    "train_lr_feats",
    "train_lr_logits",
    "train_att",
    "train_lr_seg_out",
    "train_hr_logits",
    "train_fused",
    "train_gt",
    "train_seg_weight",
    "train_losses",
    "pl_lr_logits",
    "pl_att",
    "pl_hr_slide_logits",
    "pl_fused",
    "pl_logits_fullres_rows",
    "pl_rows_kept",
    "pl_pseudo_label",
    "pl_pseudo_weight_scalar",
    "test_merged_logits_rows",
    "test_max_prob",
    "test_seg_pred",
    "test_softmax_class_sums",
    "test_rows_kept",
)
JSON_FILES = ("pure_functions.json", "mitb_keys.json", "hrda_mitb0/config.json")


def tensor_hash(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's dtype, shape and bytes."""
    tensor = tensor.detach().contiguous().cpu()
    digest = hashlib.sha256(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def flat_tensors(value, prefix: str) -> dict[str, torch.Tensor]:
    """Every tensor inside nested dicts and lists, by a dotted / indexed name."""
    if torch.is_tensor(value):
        return {prefix: value}
    if isinstance(value, dict):
        return {
            k: v
            for key, item in value.items()
            for k, v in flat_tensors(item, f"{prefix}.{key}").items()
        }
    if isinstance(value, list | tuple):
        return {
            k: v
            for i, item in enumerate(value)
            for k, v in flat_tensors(item, f"{prefix}[{i}]").items()
        }
    return {}


def main(source: Path) -> None:
    checkpoint = torch.load(source / "hrda_mitb0" / "checkpoint.pth", weights_only=False)
    student = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")}
    compact = {"meta": {"config": checkpoint["meta"]["config"]}, "state_dict": student}
    (HERE / "hrda_mitb0").mkdir(exist_ok=True)
    torch.save(compact, HERE / "hrda_mitb0" / "checkpoint.pth")
    io = torch.load(source / "hrda_mitb0" / "io.pt", weights_only=False)
    kept = {key: io[key] for key in IO_KEYS}
    torch.save(kept, HERE / "hrda_mitb0" / "io.pt")
    for name in JSON_FILES:
        shutil.copyfile(source / name, HERE / name)
    hashes = {f"checkpoint:{k}": tensor_hash(v) for k, v in student.items()}
    hashes |= {f"io:{k}": tensor_hash(v) for k, v in flat_tensors(kept, "").items()}
    manifest = {
        "made_by": "python tests/golden/extract.py ../shared/golden",
        "json_sha256": {
            n: hashlib.sha256((source / n).read_bytes()).hexdigest() for n in JSON_FILES
        },
        "tensor_sha256": hashes,
    }
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"kept {len(student)} weights and {len(kept)} recorded entries in {HERE}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
