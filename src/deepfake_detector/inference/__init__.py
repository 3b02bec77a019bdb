"""Verdicts and the front ends that give them.

`predict` turns a registered or local model into a `Detector` (LiteRT or TensorFlow) that answers
"real or fake?" for images and videos with per-face evidence; `tracks` follows faces through a
clip; the MLflow pyfunc flavour, the REST server and the Gradio app are thin adapters over it.
`export`/`lite_export` write the LiteRT files, `gradcam` the heat maps.
"""
