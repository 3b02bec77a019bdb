"""The Gradio app: upload a picture or a clip, get a verdict with per-face evidence.

Every answer comes from `predict.Detector`, the same path as the CLI, evaluation and REST.
Named endpoints for programs: `/predict_image` and `/predict_video` (see `gradio_client`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pandas as pd

from deepfake_detector.core.atomic import atomic_path
from deepfake_detector.inference.gradcam import grad_cams, overlay
from deepfake_detector.inference.predict import Detector
from deepfake_detector.learning.abstention import CLOSE
from deepfake_detector.sources.images import InputError, is_video, read_image

if TYPE_CHECKING:
    import gradio as gr

    from deepfake_detector.inference.service_guard import ServiceMetrics

log = logging.getLogger(__name__)

COLOURS = {"fake": (220, 40, 40), "real": (40, 170, 60), "uncertain": (230, 160, 20)}
HEADLINE = ("video_auc", "frame_auc", "video_eer", "video_log_loss")


MAX_SHOWN = 4096  # longest side of the annotated picture sent back to the browser


def draw_faces(rgb: np.ndarray, faces: list[dict[str, Any]]) -> np.ndarray:
    """The picture with a box and P(fake) per face (red fake, green real), at most MAX_SHOWN px."""
    out = rgb.copy()
    thickness = max(2, round(max(rgb.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face["box"]
        colour = COLOURS[face["label"]]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness)
        text = f"{face['label']} {face['p_fake']:.2f}"
        cv2.putText(
            out,
            text,
            (x, max(0, y - 8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5 * thickness,
            colour,
            thickness,
        )
    scale = MAX_SHOWN / max(out.shape[:2])
    if scale < 1:  # image formats for the browser have size limits (WebP: 16383 px a side)
        size = (max(1, round(out.shape[1] * scale)), max(1, round(out.shape[0] * scale)))
        out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
    return out


HEAT_TILE = 256  # pixels a side of each face's heat map in the app
LEGEND = 18  # height of the colour legend under the heat maps


def heat_strip(tiles: list[tuple[np.ndarray, str]], size: int = HEAT_TILE) -> np.ndarray | None:
    """Grad-CAM overlays side by side, each captioned with its face and P(fake), over a legend
    of the colour scale (blue: no weight for P(fake), red: the most)."""
    if not tiles:
        return None
    width = size * len(tiles)
    strip = np.full((size + 28 + LEGEND + 18, width, 3), 255, np.uint8)
    for i, (tile, caption) in enumerate(tiles):
        strip[28 : 28 + size, i * size : (i + 1) * size] = cv2.resize(
            tile, (size, size), interpolation=cv2.INTER_CUBIC
        )
        scale = 0.55  # smaller for a caption that would run into the next tile
        (w, _), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        scale *= min(1.0, (size - 12) / max(w, 1))
        cv2.putText(
            strip, caption, (i * size + 6, 20), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1
        )
    ramp = np.linspace(0, 255, width, dtype=np.float32).astype(np.uint8)[None, :]
    colours = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    top = 28 + size + 4
    strip[top : top + LEGEND - 4] = colours
    font, ink = cv2.FONT_HERSHEY_SIMPLEX, (0, 0, 0)
    cv2.putText(strip, "less", (4, top + LEGEND + 12), font, 0.45, ink, 1)
    label = "more weight toward fake"
    (w, _), _ = cv2.getTextSize(label, font, 0.45, 1)
    cv2.putText(strip, label, (max(40, width - w - 4), top + LEGEND + 12), font, 0.45, ink, 1)
    return strip


def explained_faces(detector: Detector, faces: list[Any], captions: list[str]) -> np.ndarray | None:
    """The faces' crops with their Grad-CAM heat maps, captioned; None without the Keras model
    (a serving install has no TensorFlow)."""
    if not faces:
        return None
    try:
        heats = grad_cams(detector.model, [f.crop for f in faces], detector.config.image_size)
    except (ImportError, FileNotFoundError) as exc:
        log.info("no Grad-CAM heat maps: %s", exc)
        return None
    return heat_strip(
        [(overlay(f.crop, h), c) for f, h, c in zip(faces, heats, captions, strict=True)]
    )


def verdict_markdown(result: dict[str, Any]) -> str:
    """One line for people: the verdict, its probability and the answering model."""
    model = result.get("model") or {}
    by = (
        f"{model.get('name')} v{model.get('version')}"
        if model.get("version")
        else model.get("source", "")
    )
    if result["verdict"] == "error":
        return f"### Cannot analyse this file\n{result['error']}"
    if result["verdict"] == "no_face":
        return f"### No face found\nNothing to judge: no face was detected. (model: {by})"
    faces = len(result["faces"])
    if result["verdict"] == "uncertain":
        why = sorted({str(f.get("uncertain")) for f in result["faces"] if f.get("uncertain")})
        why += sorted({str(t["uncertain"]) for t in result.get("tracks", []) if t.get("uncertain")})
        headline = (
            "a face scored too close to the threshold to call"
            if CLOSE in why
            else "no face here can be judged"
        )
        return (
            f"### Verdict: UNCERTAIN — {headline}\n"
            f"{faces} face(s): {'; '.join(why) or 'not judged'}; P(fake) {result['p_fake']:.2f} "
            f"(threshold {result['threshold']:.2f}); model: {by}"
        )
    target = (result.get("operating_point") or {}).get("target_fpr")
    point = f" (calls {target:.0%} of validation real faces fake)" if target else ""
    return (
        f"### Verdict: {result['verdict'].upper()} — P(fake) {result['p_fake']:.2f}\n"
        f"{faces} face(s); threshold {result['threshold']:.2f}{point}; model: {by}"
    )


class Analyser:
    """The app's callbacks over one Detector."""

    def __init__(
        self,
        detector: Detector,
        max_faces_explained: int = 8,
        metrics: ServiceMetrics | None = None,
    ) -> None:
        self.detector = detector
        self.max_faces_explained = max_faces_explained
        self.metrics = metrics

    def _answered(self, result: dict[str, Any]) -> dict[str, Any]:
        if self.metrics is not None:
            self.metrics.answered([result])
        return result

    def image(
        self, path: str | None
    ) -> tuple[str, np.ndarray | None, np.ndarray | None, dict[str, Any]]:
        """Image tab: verdict, annotated picture, Grad-CAM per face, the full result."""
        if not path:
            return "### Upload an image first", None, None, {}
        file = Path(path)
        try:
            if is_video(file):
                raise InputError(f"{file.name}: this is a video; use the Video tab")
            return self._image(file, read_image(file))
        except InputError as exc:
            result = self._error(file, str(exc))
        except Exception as exc:  # an answer, never a stack trace
            log.warning("%s: could not be analysed", file, exc_info=True)
            result = self._error(file, f"{file.name}: could not be analysed ({exc!r})")
        return verdict_markdown(result), None, None, result

    def _image(
        self, file: Path, rgb: np.ndarray
    ) -> tuple[str, np.ndarray | None, np.ndarray | None, dict[str, Any]]:
        scored = self.detector.score_image(rgb)
        result = self._answered({"file": file.name, **self.detector.predict_image_scored(scored)})
        explained = scored[: self.max_faces_explained]
        captions = [f"face {i}: P(fake) {f.p_fake:.2f}" for i, f in enumerate(explained)]
        cams = explained_faces(self.detector, explained, captions)
        return verdict_markdown(result), draw_faces(rgb, result["faces"]), cams, result

    def video(
        self, path: str | None
    ) -> tuple[str, pd.DataFrame, np.ndarray | None, pd.DataFrame, dict[str, Any]]:
        """Video tab: verdict, tracks, each track's most suspicious face with its heat map, the
        score over time, the full result."""
        empty_tracks = pd.DataFrame(columns=["track", "p_fake", "label", "faces"])
        empty_line = pd.DataFrame({"time_s": [], "p_fake": []})
        if not path:
            return "### Upload a video first", empty_tracks, None, empty_line, {}
        file = Path(path)
        if not is_video(file):
            result = self._error(file, f"{file.name}: not a video file; use the Image tab")
            return verdict_markdown(result), empty_tracks, None, empty_line, result
        answer, scored = self.detector.predict_path_scored(file)
        result = self._answered({**answer, "file": file.name})
        result.pop("path")  # gradio_client takes a "path" key for a file to download
        if result["verdict"] == "error":
            return verdict_markdown(result), empty_tracks, None, empty_line, result
        tracks = pd.DataFrame(
            result["tracks"],
            columns=["track", "p_fake", "label", "faces", "first_frame", "last_frame"],
        ).round({"p_fake": 3})
        line = pd.DataFrame(
            [t for t in result["timeline"] if t["p_fake"] is not None],
            columns=["frame", "time_s", "p_fake"],
        )
        shown, captions = [], []
        for track in result["tracks"][: self.max_faces_explained]:
            members = [
                (face, scored[i])
                for i, face in enumerate(result["faces"])
                if face["track"] == track["track"]
            ]
            face, worst = max(members, key=lambda m: m[0]["p_fake"])
            shown.append(worst)
            captions.append(
                f"track {track['track']} ({track['label']}): {track['p_fake']:.2f}"
                f", frame {face['frame']}"
            )
        cams = explained_faces(self.detector, shown, captions)
        return verdict_markdown(result), tracks, cams, line, result

    def _error(self, file: Path, message: str) -> dict[str, Any]:
        return {"file": file.name, **self.detector.error_result(file, message)}


def header_markdown(detector: Detector) -> str:
    """Which model answers, and how it scored on its test split."""
    metrics = detector.config.test_metrics
    shown = ", ".join(
        f"{k.replace('_', ' ')} {metrics[k]:.3f}"
        for k in HEADLINE
        if isinstance(metrics.get(k), int | float)
    )
    info = detector.model_info()
    lines = [
        "# Real or fake?",
        "Upload a picture or a short clip. Every face is found, scored and explained; the "
        "verdict is **fake** when any face (or, in a video, any tracked person) is.",
        "",
        f"Model: **{detector.ref.label()}**" + (f" — test: {shown}" if shown else ""),
        "",
        f"What it knows: {info['trained_on']}.",
    ]
    study = info["study"]
    if study.get("pooled_frame_auc") is not None and not info["demo"]:  # the demo: its own alone
        recipe = "this recipe" if study.get("same_recipe") else "another recipe"
        lines += [
            "",
            f"Study `{study['name']}` ({recipe}): pooled frame AUC "
            f"{study['pooled_frame_auc']:.3f} on people it never saw.",
        ]
    if info["demo"]:
        lines += [
            "",
            "> **This is the demo model.** It learnt from the embedded demo set: synthetic "
            "identities made from three photographs. Its verdicts say nothing about real "
            "deepfakes. Train one on real faces before trusting an answer: "
            "`dvc exp run register_model -S split.faces_dir=data/face_images` "
            "(README: Next: a real detector).",
        ]
    return "\n".join(lines)


def use_atomic_image_cache() -> None:
    """Make Gradio write each output picture once, atomically (idempotent).

    Gradio 6.31 writes an output image to a cache path named after its content and rewrites it
    in place on every request: two users who get the same picture at once (the same upload, an
    example) can be sent a file while it is being rewritten, a cut-off body. Here a picture
    already in the cache is left alone, and a new one appears under its name complete.
    """
    from gradio import processing_utils

    if processing_utils.save_pil_to_cache.__name__ == "save_pil_to_cache_once":
        return

    def save_pil_to_cache_once(
        img: Any, cache_dir: str, name: str = "image", format: str = "webp"
    ) -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
        target = Path(cache_dir) / processing_utils.hash_bytes(data) / f"{name}.{format}"
        if not target.exists():
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
        return str(target.resolve())

    processing_utils.save_pil_to_cache = save_pil_to_cache_once


NO_CARD = (
    "No model card for this model: a card is written into every version `register_model` "
    "registers (`deepfake card` prints it)."
)


def build_app(
    detector: Detector,
    image_examples: dict[str, str],
    video_examples: dict[str, str],
    card: str = NO_CARD,
    metrics: ServiceMetrics | None = None,
) -> gr.Blocks:
    """The Blocks app with an Image, a Video and a Model card tab and named API endpoints;
    examples as {path: button label}; `card` is the model's card as Markdown
    (`inference.model_card`); `metrics` counts every answer (the server's `/metrics`)."""
    import gradio as gr

    use_atomic_image_cache()

    analyse = Analyser(detector, metrics=metrics)
    with gr.Blocks(analytics_enabled=False, title="Deepfake detector") as demo:
        gr.Markdown(header_markdown(detector))
        with gr.Tab("Image"):
            with gr.Row():
                with gr.Column():
                    image_in = gr.File(
                        label="Image (JPEG, PNG, WebP, BMP)", type="filepath", file_types=["image"]
                    )
                    image_go = gr.Button("Analyse image", variant="primary")
                    if image_examples:
                        gr.Examples(
                            list(image_examples),
                            inputs=image_in,
                            label="Examples",
                            example_labels=list(image_examples.values()),
                        )
                with gr.Column():
                    image_verdict = gr.Markdown()
                    image_boxes = gr.Image(label="Faces", type="numpy", interactive=False)
            image_cams = gr.Image(
                label="Grad-CAM: where in each face the evidence for its score lies (red: most)",
                type="numpy",
                interactive=False,
                height=HEAT_TILE + 90,
            )
            image_json = gr.JSON(label="Result")
            image_go.click(
                analyse.image,
                image_in,
                [image_verdict, image_boxes, image_cams, image_json],
                api_name="predict_image",
            )
        with gr.Tab("Video"):
            with gr.Row():
                with gr.Column():
                    video_in = gr.File(
                        label="Video (MP4, AVI, MOV, MKV, WebM)",
                        type="filepath",
                        file_types=["video"],
                    )
                    video_go = gr.Button("Analyse video", variant="primary")
                    if video_examples:
                        gr.Examples(
                            list(video_examples),
                            inputs=video_in,
                            label="Examples",
                            example_labels=list(video_examples.values()),
                        )
                with gr.Column():
                    video_verdict = gr.Markdown()
                    video_tracks = gr.Dataframe(label="Tracked people", interactive=False)
            video_cams = gr.Image(
                label="Each tracked person's most suspicious face, with its Grad-CAM (red: most)",
                type="numpy",
                interactive=False,
                height=HEAT_TILE + 90,
            )
            video_plot = gr.LinePlot(
                x="time_s",
                y="p_fake",
                title="P(fake) over time",
                y_lim=[0, 1],
                label="Score over time",
            )
            video_json = gr.JSON(label="Result")
            video_go.click(
                analyse.video,
                video_in,
                [video_verdict, video_tracks, video_cams, video_plot, video_json],
                api_name="predict_video",
            )
        with gr.Tab("Model card"):
            gr.Markdown(card)
    return demo


def demo_examples(frames_dir: Path, demo_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Example inputs from the demo set, when the pipeline has made it: real and fake of each,
    as {path: what its button says}."""
    clips = {
        label: sorted((demo_dir / "videos" / label).glob("*.mp4"))[:2] for label in ("real", "fake")
    }
    videos = {str(p): f"{label} clip: {p.stem}" for label in ("real", "fake") for p in clips[label]}
    images = {
        str(frame): f"{label} frame: {clip.stem}"
        for label in ("real", "fake")
        for clip in clips[label][:1]
        if (frame := frames_dir / clip.stem / "000000.jpg").exists()
    }
    return images, videos
