"""``cellbench explain``: shift fingerprint and label-free accuracy estimates for an unlabeled target set.

- :mod:`.fingerprint`: per-image statistics and per-set summaries.
- :mod:`.nearest`: distances from the target to the synthetic shifted sets, composition of mixtures.
- :mod:`.estimate`: ATC, DoC and shift-matched accuracy estimates.
- :mod:`.recommend`: which cell to submit and which augmentation families would close the gap.
- :mod:`.core`: orchestrates a run folder + a target spec into one result.
"""
