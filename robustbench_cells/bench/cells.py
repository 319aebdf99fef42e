"""A validated matrix expanded into cells: their configs, keys, labels and ``--cells`` selection.

A cell's key hashes its full config, so the config's structure is part of the contract with every
stored run: ``--resume`` finds the cells it has by key. Change it and old runs start from scratch.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import TYPE_CHECKING, Any

from robustbench_cells.bench.matrix_entries import ScoreEntry, Where, split_member, validate_recipe
from robustbench_cells.bench.store import Cell
from robustbench_cells.errors import CellbenchError

if TYPE_CHECKING:
    from robustbench_cells.bench.matrix import Matrix

KEY_LENGTH = 16


def cell_key(config: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of a cell's full config, truncated."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:KEY_LENGTH]


def cell_label(cell: Cell) -> str:
    """``model/augmentation/seed``: what ``--cells`` patterns match and progress shows."""
    return f"{cell.model}/{cell.augmentation}/{cell.seed}"


def expand_cells(matrix: Matrix, data_fingerprint: str) -> list[Cell]:
    """Training and score-only cells in matrix order, ensemble cells, then adapted cells.

    A training cell's ``config`` holds everything that determines its results (the key hashes it):
    ``{"kind": "train", model, model_options, augmentation, seed, recipe, image_size, data, split}``,
    ``augmentation`` being :meth:`AugmentationChain.config` and the cell's augmentation its label.
    A score-only cell (one per ``{ path = ... }`` model, not per augmentation or seed: it trains
    nothing) is ``{**ScoreEntry.config, image_size, data, split}`` (kind ``score``), augmentation
    ``external``.
    An ensemble cell's config is ``{"kind": "ensemble", "name", "members": [keys], "seed"}``.
    An adapted cell (one per training or score-only cell x adapter chain other than ``none``) is
    ``{"kind": "adapt", "base": key, "base_label", "adapter": chain label, "seed"}``; its model label
    is ``model+chain`` so tables show the adapter beside the plain cell.
    """
    from robustbench_cells.bench.scoring_cells import SCORE_AUGMENTATION

    cells: list[Cell] = []
    by_label: dict[str, Cell] = {}
    scored: dict[str, Cell] = {}  # "label/external" -> the one score-only cell, whatever the seed asked for
    for model in matrix.models:
        if isinstance(model, ScoreEntry):
            config = {**model.config, "image_size": matrix.image_size, "data": data_fingerprint,
                      "split": {"seed": matrix.split_seed, "fractions": list(matrix.split_fractions)}}
            cell = Cell(cell_key(config), model.label, SCORE_AUGMENTATION, model.seed, recipe={}, config=config,
                        position=len(cells))
            cells.append(cell)
            scored[f"{model.label}/{SCORE_AUGMENTATION}"] = cell
            continue
        recipe = {**matrix.train, **model.train}
        if model.train:
            recipe = validate_recipe(Where(matrix.path), "train", recipe)
        for chain in matrix.augmentations:
            for seed in matrix.seeds:
                config = {
                    "kind": "train", "model": model.name, "model_options": model.options,
                    "augmentation": chain.config(), "seed": seed, "recipe": recipe,
                    "image_size": matrix.image_size, "data": data_fingerprint,
                    "split": {"seed": matrix.split_seed, "fractions": list(matrix.split_fractions)},
                }
                cell = Cell(cell_key(config), model.label, chain.label, seed,
                            recipe=recipe, config=config, position=len(cells))
                cells.append(cell)
                by_label[cell_label(cell)] = cell
    for ens in matrix.ensembles:
        # a score-only member has one cell: its seed does not multiply the ensemble
        trained = [split_member(m) for m in ens.members if split_member(m)[0] not in scored]
        seeds = {s for _, _, s in trained if s is not None}
        if not trained:  # only score-only members: one ensemble, at their seed
            seeds = {scored[split_member(ens.members[0])[0]].seed}
        for seed in (sorted(seeds) if seeds else matrix.seeds):
            member_cells = []
            for m in ens.members:
                model_aug, _, member_seed = split_member(m)
                member_cells.append(scored.get(model_aug)
                                    or by_label[f"{model_aug}/{seed if member_seed is None else member_seed}"])
            augs = {c.augmentation for c in member_cells}
            config = {"kind": "ensemble", "name": ens.name, "members": [c.key for c in member_cells],
                      "member_labels": [cell_label(c) for c in member_cells], "seed": seed}
            cells.append(Cell(cell_key(config), ens.name, augs.pop() if len(augs) == 1 else "mixed", seed,
                              recipe={}, config=config, position=len(cells)))
            if seeds:
                break  # members name their seeds explicitly: one ensemble
    for base in [c for c in cells if c.config["kind"] in ("train", "score")]:
        for adapter in matrix.adapters:
            if adapter == "none":
                continue  # the base cell itself
            config = {"kind": "adapt", "base": base.key, "base_label": cell_label(base), "adapter": adapter,
                      "seed": base.seed}
            cells.append(Cell(cell_key(config), f"{base.model}+{adapter}", base.augmentation, base.seed,
                              recipe=base.recipe, config=config, position=len(cells)))
    return cells


def select_cells(cells: list[Cell], patterns: list[str] | None) -> list[Cell]:
    """Cells whose ``model/augmentation/seed`` label matches any fnmatch pattern, plus ensemble members."""
    if not patterns:
        return cells
    chosen = {c.key for c in cells if any(fnmatch.fnmatchcase(cell_label(c), p) for p in patterns)}
    if not chosen:
        labels = [cell_label(c) for c in cells]
        raise CellbenchError(f"--cells {' '.join(patterns)}: matches no cell; cells are: {', '.join(labels[:10])}"
                             f"{' ...' if len(labels) > 10 else ''}")
    for c in cells:  # an ensemble needs its members, an adapted cell its trained model
        if c.key in chosen and c.config.get("kind") == "ensemble":
            chosen |= set(c.config["members"])
        if c.key in chosen and c.config.get("kind") == "adapt":
            chosen.add(c.config["base"])
    return [c for c in cells if c.key in chosen]
