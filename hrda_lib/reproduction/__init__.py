"""The reproduction apparatus: what the numbered notebooks and `make demo` run around the method.

* `catalogue`: the rows of the paper's tables, their names and the profiles that say which rows
  run where, for how long and with which seeds;
* `runner`: executes the notebooks of a profile with papermill, skipping up-to-date ones
  (`python -m hrda_lib.reproduce`);
* `runs`: trains, reuses and evaluates the rows of a table (`python -m hrda_lib.compare`);
* `convergence`: what each run's last third added, over every schedule length a row was run at;
* `results`: each notebook's results folder and what it writes there;
* `analysis`: measurements behind the figures (branch predictions, scale attention per class,
  window grids, official checkpoints, the benchmark's datasheet as a table);
* `tables`: paper-style tables with every published number beside ours;
* `demo`: the demo's run into a folder of its own and its comparison with the committed results.
* `self_training`: one iteration of the self-training recipe, drawn step by step (notebook 02);
* `redraw`: re-draws the committed table figures from their CSVs after a chart changes;
* `trained`: the trained models committed for instant exploration, and their manifests.

Figures are drawn by `hrda_lib.plots` (crops, attention) and `hrda_lib.charts` (results).
"""
