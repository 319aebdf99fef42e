"""Built-in data set sources: synthetic, npz, folder, bloodmnist."""

from __future__ import annotations

from robustbench_cells.hookspecs import hookimpl
from robustbench_cells.registry import DatasetSpec


def _synthetic(arg: str | None):
    from robustbench_cells.data.synthetic import load_synthetic

    return load_synthetic(arg)


def _npz(arg: str | None):
    from robustbench_cells.data.loaders import load_npz

    return load_npz(arg)


def _folder(arg: str | None):
    from robustbench_cells.data.loaders import load_folder

    return load_folder(arg)


def _bloodmnist(arg: str | None):
    from robustbench_cells.data.loaders import load_bloodmnist

    return load_bloodmnist(arg)


@hookimpl
def register_datasets(register) -> None:
    """Register the built-in data set sources (loaders are imported on first use, keeping startup fast)."""
    register(DatasetSpec(
        name="synthetic", loader=_synthetic, example="synthetic:2000:seed=1",
        description="Procedural 96x96 cells of the 8 PBC classes, own 70/10/20 split; options: "
                    "seed, stain, background, blur, scale, illumination, noise, crowding",
    ))
    register(DatasetSpec(
        name="npz", loader=_npz, example="npz:train.npz",
        description="NumPy archive: images (N,H,W,3) uint8 + labels (AN2DL), or MedMNIST train_/val_/test_ arrays; "
                    "optional class_names",
    ))
    register(DatasetSpec(
        name="folder", loader=_folder, example="folder:../shared/data/pbc96",
        description="One sub-folder of images per class (PBC names such as ig understood); "
                    "SPLITS.csv or train/val/test sub-folders give the split",
    ))
    register(DatasetSpec(
        name="bloodmnist", loader=_bloodmnist, example="bloodmnist:64",
        description="MedMNIST BloodMNIST (SIZE 28/64/128/224) from ~/.medmnist or via the medmnist package",
    ))
