"""One module per pipeline stage, each defining the library function of the stage's name.

make_demo_videos (`demo_data`), download_videos, extract_frames, crop_faces, split_dataset,
train_model, evaluate_model, register_model. Their order, params, code, inputs and outputs are
declared once in `deepfake_detector.core.dag`; the DVC stages, the CLI commands and the Prefect
tasks are generated from that table and call these functions.
"""
