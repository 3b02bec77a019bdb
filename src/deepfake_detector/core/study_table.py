"""The studies' table (studies/dvc.yaml, run from the project root): apart from the pipeline's,
so `dvc repro` at the top does not run them, and editing one changes no pipeline stage's code.
Each is the CLI command of its name.
"""

from __future__ import annotations

from deepfake_detector.core.artifacts import REPORT_NAME, STUDY_SUMMARY
from deepfake_detector.core.dag import Out, Stage

# A study's report folder: its files.
STUDY_REPORT = "report.md"
STUDY_FOLDS = "folds.csv"
STUDY_BREAKDOWN = "breakdown.csv"
STUDY_PREDICTIONS = "video_predictions.csv"
STUDY_CANDIDATES = "candidates.csv"
STUDY_FIGURE = "roc.png"
STUDY_GEOMETRY = "geometry.csv"  # the face geometry study's table


def _study_outs(study: str) -> tuple[Out, ...]:
    folder = f"${{studies.reports_dir}}/${{studies.{study}.name}}"
    files = (
        STUDY_REPORT,
        STUDY_FOLDS,
        STUDY_BREAKDOWN,
        STUDY_PREDICTIONS,
        STUDY_CANDIDATES,
        REPORT_NAME,
    )
    return (
        *(Out(f"{folder}/{name}", cache=False) for name in files),
        Out(f"{folder}/{STUDY_SUMMARY}", kind="metrics", cache=False),
        Out(f"{folder}/{STUDY_FIGURE}", kind="plots", cache=False),
    )


VIDEO_STAGES = ("download_videos", "extract_frames", "crop_faces")  # a manifest source's way in
STUDY_STAGES: dict[str, Stage] = {
    s.name: s
    for s in (
        Stage(
            "import_faces",
            "sources.face_images",
            "Import labelled face crops (e.g. the shared DFD crops) as a faces table.",
            # faces: the crop size and JPEG quality of re-cut crops (face_images.recut).
            params=("face_images", "faces.crop_size", "faces.jpeg_quality", "paths.recut_dir"),
            deps=("${face_images.root}",),
            outs=(Out("${face_images.out_dir}"),),
            home="${face_images.out_dir}",
        ),
        Stage(
            "leave_one_group_out",
            "studies.protocols",
            "Leave one group (actor) out: nested recipe choice, pooled frame AUC.",
            # split.extra_faces: other people's faces join every fold's training.
            params=(
                "train",
                "evaluate",
                "faces",
                "face_images",
                "split.extra_faces",
                "split.seed",
                "paths.recut_dir",
                "studies.leave_one_group_out",
                "studies.reports_dir",
            ),
            deps=("${studies.leave_one_group_out.source.faces}",),
            outs=_study_outs("leave_one_group_out"),
            runs=VIDEO_STAGES,
            home="${studies.reports_dir}/${studies.leave_one_group_out.name}",
        ),
        Stage(
            "cross_dataset",
            "studies.protocols",
            "Train on one source, test on others (other people, other forgeries).",
            params=(
                "train",
                "evaluate",
                "faces",
                "face_images",
                "frames",
                "split.extra_faces",
                "split.seed",
                "paths.recut_dir",
                "studies.cross_dataset",
                "studies.reports_dir",
            ),
            # Video sources run through download, frames and faces.
            deps=("${studies.cross_dataset.train.faces}", "data/manifests", "${paths.demo_dir}"),
            outs=_study_outs("cross_dataset"),
            runs=VIDEO_STAGES,
            home="${studies.reports_dir}/${studies.cross_dataset.name}",
        ),
        Stage(
            "leave_one_dataset_out",
            "studies.dataset_out",
            "Leave one dataset (and one forgery method) out: nested, per held-out set AUC.",
            # split.extra_faces: its real-only sets (UTKFace) join every fold's training.
            params=(
                "train",
                "evaluate",
                "faces",
                "face_images",
                "split.extra_faces",
                "split.seed",
                "paths.recut_dir",
                "studies.leave_one_dataset_out",
                "studies.reports_dir",
            ),
            deps=("${face_images.out_dir}",),
            outs=_study_outs("leave_one_dataset_out"),
            runs=VIDEO_STAGES,
            home="${studies.reports_dir}/${studies.leave_one_dataset_out.name}",
        ),
        Stage(
            "face_geometry",
            "studies.face_geometry",
            "Where MTCNN finds the face in each source's crops and in prediction's crop.",
            params=(
                "faces",
                "face_images",
                "split.extra_faces",
                "split.seed",
                "paths.recut_dir",
                "studies.leave_one_dataset_out.datasets",
                "studies.face_geometry",
                "studies.reports_dir",
            ),
            deps=("${face_images.out_dir}",),
            outs=tuple(
                Out(f"${{studies.reports_dir}}/${{studies.face_geometry.name}}/{name}", cache=False)
                for name in (STUDY_REPORT, STUDY_GEOMETRY, REPORT_NAME)
            ),
            home="${studies.reports_dir}/${studies.face_geometry.name}",
            runs=VIDEO_STAGES,
        ),
    )
}
