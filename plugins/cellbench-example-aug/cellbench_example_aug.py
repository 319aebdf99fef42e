"""cellbench-example-aug: a ``channel_shuffle`` augmentation (the README's plugin example)."""

import numpy as np

from robustbench_cells import hookimpl
from robustbench_cells.registry import AugmentationSpec


def make_channel_shuffle(p=0.5):
    """Build the augmentation: each image gets its RGB channels permuted with probability ``p``."""

    def channel_shuffle(images, rng):
        # images: uint8 (N, H, W, 3); rng: numpy Generator -- the only source of randomness.
        order = np.argsort(rng.random((len(images), 3)), axis=1)  # one random permutation per image
        order[rng.random(len(images)) >= p] = [0, 1, 2]            # the others stay as they are
        return np.take_along_axis(images, order[:, None, None, :], axis=3)

    return channel_shuffle


@hookimpl
def register_augmentations(register):
    register(AugmentationSpec(name="channel_shuffle", family="color", kind="image",
                              factory=make_channel_shuffle, options={"p": 0.5},
                              description="permute the RGB channels of each image"))
