"""Where data comes from and how it is read.

Manifests of labelled videos, video and image readers (every decode goes through them), the MTCNN
face detector, and the face-crop datasets (the shared DFD, DFDC and UTKFace crops, imported
face images, the extra people a split may add). Readers raise clear errors for bad input.
"""
