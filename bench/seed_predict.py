"""`python seed_predict.py MODEL.keras IMAGE...`: the seed's way of judging pictures, as a script.

Kept as the baseline of the whole-process benchmarks: import TensorFlow, load the Keras model,
build the `mtcnn` package's MTCNN, then for each picture: OpenCV read, MTCNN at full resolution,
the first face, resized to the model's input, `model.predict`, one line printed.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    """Print `path<TAB>P(fake)` (or `no face`) per image."""
    import cv2
    import keras
    from mtcnn import MTCNN

    model = keras.models.load_model(argv[0], compile=False)
    size = int(model.input_shape[1])
    detector = MTCNN()
    for path in argv[1:]:
        rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
        faces = detector.detect_faces(rgb)
        if not faces:
            print(f"{path}\tno face")
            continue
        x, y, w, h = (int(v) for v in faces[0]["box"])
        crop = cv2.resize(rgb[max(y, 0) : y + h, max(x, 0) : x + w], (size, size))
        p = float(model.predict(crop[None].astype("float32"), verbose=0).ravel()[0])
        print(f"{path}\t{p:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
