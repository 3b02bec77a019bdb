"""The recipes the pipeline stages and the studies share: how a detector is trained from a
split, and how a trained detector is calibrated and assessed. Stages read, call these, write
and report; studies call them fold by fold. Neither stages nor studies are imported here.
"""
