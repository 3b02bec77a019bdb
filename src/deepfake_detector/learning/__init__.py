"""The network and what it learns with.

The MobileNetV2 detector (`model`), the `tf.data` input pipeline with its augmentations and
self-blended pseudo-fakes (`input_pipeline`, `synthetic`), metrics with bootstrap intervals and
probability calibration. Used by the training and evaluation stages and by the studies.
"""
