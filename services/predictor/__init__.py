"""Demand and cost models: Keras models, training, the model repository and the KServe server.

The model repository (``repository.py``) is pure standard library; TensorFlow is imported only by
the modules that build, train or serve models.
"""
