"""Quality studies: leave-one-group-out and cross-dataset protocols (`protocols`), their
reports with intervals (`report`) and the table of every configuration tried (`results`).
Run by `dvc repro studies/dvc.yaml`, never by the test suite.
"""
