"""The model repository and the one owner of "which version is served".

``repository``: a folder of versioned SavedModels shared by training and serving (standard library
only); ``publish``: a trained model into the repository and the store's ``model_versions``.
"""
