"""The predictor: serving only (the inference core, the KServe model, the model server process).

Training lives in :mod:`services.training`, the model repository in :mod:`services.registry`.
"""
