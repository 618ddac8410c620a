"""Retraining: a Ray Tune search over the demand model, then a champion/challenger decision.

``fit`` (plain, no Ray) trains one configuration; ``search`` runs it under Ray Tune; ``champion``
scores the challenger and the served model on the same hold-out and promotes only a better one.
"""
