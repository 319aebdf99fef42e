"""Pure, vectorised NumPy/OpenCV image functions shared by augmentations and shifts."""
