"""The small shared ground every other part stands on.

Params (`config`), content keys (`keys`, `cache_keys`), the pipeline's shape declared once
(`dag`), atomic writes, stage reports, the checkout's run lock, process set-up, user errors, the
name of a registered model (`model_ref`) and the one door to MLflow (`tracking`). Nothing here
imports the stages, the network or the front ends.
"""
