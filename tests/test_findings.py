"""The sentences 03 prints about its tables are computed from the numbers beside them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hrda_lib.reproduction.analysis import attention_findings, branch_findings


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "class": ["road", "sidewalk", "pole", "person", "sky", "traffic light"],
            "mean_attention": [0.14, 0.46, 0.49, 0.52, 0.20, np.nan],
            "IoU_context": [80.0, 1.9, 10.5, 21.0, 90.6, 0.0],
            "IoU_detail": [61.5, 0.2, 30.8, 21.3, 60.8, 0.0],
            "IoU_fused": [79.5, 0.5, 16.7, 24.8, 90.0, 0.0],
        }
    )


def test_attention_findings_name_the_extremes_and_what_has_no_value() -> None:
    text = attention_findings(_table(), n=2)
    lines = text.splitlines()
    assert lines[0] == "- most attention to detail: person 0.52, pole 0.49"
    assert lines[1] == "- least (these follow the context): road 0.14, sky 0.20"
    assert "thin classes (person, pole): mean 0.51; the other classes: 0.27" in text
    assert "segmented hardly at all (fused IoU < 5): sidewalk 0.46" in text  # not "context"
    assert lines[-1] == "- no value (never predicted): traffic light"


def test_branch_findings_report_where_one_branch_alone_is_better() -> None:
    text = branch_findings(_table())
    assert "on 3 of the 5 classes that some branch segments" in text
    assert "- pole: fused 16.7 below detail alone 30.8 (context 10.5, detail 30.8)" in text
    assert "- sidewalk: fused 0.5 below context alone 1.9" in text
    assert "road" not in text.split("\n", 1)[1].split("0 IoU")[0]  # within 1 point: not listed
    assert text.endswith("- 0 IoU in every branch: traffic light")
