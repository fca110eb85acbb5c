"""Reproduce the paper's tables and figures: the numbered notebooks, run in order by papermill
(`hrda_lib.reproduction.runner`).

    python -m hrda_lib.reproduce --profile quick            # `make demo`
    python -m hrda_lib.reproduce --profile smoke --only 04,05 --force
    python -m hrda_lib.reproduce --list                     # profiles and notebooks
"""

from hrda_lib.cli import run
from hrda_lib.reproduction.runner import main

if __name__ == "__main__":
    run(main)
