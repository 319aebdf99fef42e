"""Model builders: our own small CNNs, Keras applications, normalisation choice and weight loading.

Every builder returns a Keras model that takes float32 images on the 0..255 scale and preprocesses
them inside the graph, so a saved ``.keras`` file carries its preprocessing. Nothing here imports
TensorFlow/Keras at module import time: the builders import it when called.
"""
