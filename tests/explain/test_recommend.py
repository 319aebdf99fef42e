"""Recommendation: which cell, how confident, which augmentations."""

from __future__ import annotations

from robustbench_cells.explain.recommend import likely_families, primary_estimate, recommend


def fam(name, share, score, distance=1.0):
    return {"family": name, "share": share, "score": score, "distance": distance,
            "nearest_shift": name, "nearest_severity": 1}


def cell(key, aug, est, acc_blur):
    return {"key": key, "model": "cnn", "augmentation": aug,
            "estimates": {"composition": est, "atc": est, "shift_matched": est},
            "accuracy": {("clean", 0): 0.95, ("blur", 3): acc_blur}}


def test_likely_families():
    assert likely_families([fam("clean", 0.4, 0.4), fam("blur", 0.3, 0.1)]) == []
    assert likely_families([fam("blur", 0.5, 0.5), fam("clean", 0.3, 0.1), fam("noise", 0.16, -2),
                            fam("stain", 0.01, -3)]) == ["blur", "noise"]


def test_primary_estimate_falls_back():
    assert primary_estimate({"composition": None, "shift_matched": 0.5, "atc": 0.7}) == ("shift_matched", 0.5)
    assert primary_estimate({"composition": 0.4, "shift_matched": 0.5}) == ("composition", 0.4)
    assert primary_estimate({"composition": None}) is None


def test_recommend_picks_best_estimate_then_matched_accuracy():
    cells = [cell("a", "none", 0.60, 0.55), cell("b", "blur_aug", 0.80, 0.70), cell("c", "simple", 0.81, 0.60)]
    rec = recommend(cells, [fam("blur", 0.9, 0.9)], [("blur", 3)], nearest_distance=0.5,
                    augmentation_families={"blur_aug": "blur", "defocus_aug": "blur", "noise_aug": "noise"})
    # b and c are tied within tolerance; b is better on the matching shifts.
    assert rec["choice"] == "b"
    assert {c["key"] for c in rec["cells"]} == {"b", "c"}
    assert rec["confidence"] == "high"
    augs = {a["augmentation"]: a for a in rec["augmentations"]}
    assert augs["blur_aug"]["gain_over_none"] == 0.70 - 0.55
    assert augs["defocus_aug"]["tried"] is False and "noise_aug" not in augs
    far = recommend(cells, [fam("blur", 0.9, 0.9)], [("blur", 3)], nearest_distance=5.0)
    assert far["confidence"] == "low"


def test_recommend_without_estimates():
    rec = recommend([{"key": "a", "model": "m", "augmentation": "none", "estimates": {}, "accuracy": {}}],
                    [], [], 1.0)
    assert rec["cells"] == [] and rec["confidence"] == "none"


def test_tried_augmentations_are_read_from_labels_with_options():
    # "simple(rotation=0)+mixup" tried simple and mixup; a "+" inside the options is no step separator
    cells = [cell("a", "none", 0.60, 0.55), cell("b", "simple(rotation=0)+mixup", 0.70, 0.65),
             cell("c", "noise_aug(sigma=1+2)", 0.65, 0.60)]
    rec = recommend(cells, [fam("blur", 0.9, 0.9)], [("blur", 3)], nearest_distance=0.5,
                    augmentation_families={"simple": "blur", "mixup": "blur", "noise_aug": "blur", "defocus": "blur"})
    untried = [a["augmentation"] for a in rec["augmentations"] if not a["tried"]]
    assert untried == ["defocus"]
