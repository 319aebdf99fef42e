"""``cellbench explain``: shift fingerprint and label-free accuracy estimates for an unlabeled target set.

- :mod:`.fingerprint`: per-image statistics and per-set summaries.
- :mod:`.nearest`: distances from the target to the synthetic shifted sets, composition of mixtures.
- :mod:`.estimate`: ATC, DoC and shift-matched accuracy estimates.
- :mod:`.recommend`: which cell to submit and which augmentation families would close the gap.
- :mod:`.coverage`, :mod:`.intervals`, :mod:`.calibration`, :mod:`.agreement`, :mod:`.metareg`:
  is the target inside what the run benchmarked, leave-one-group-out intervals, temperature
  scaling, agreement-on-the-line, the meta-regression estimator.
- :mod:`.runfolder` (what explain reads from a run folder, its cache), :mod:`.heldout` (the
  held-out calibration), :mod:`.datachecks` (leakage, outliers), :mod:`.summaries` (intervals,
  adapter effects, estimator errors onto a result).
- :mod:`.core`: orchestrates a run folder + a target spec into one result.
"""
