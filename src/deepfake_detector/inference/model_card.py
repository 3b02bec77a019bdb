"""The model card: what a version is for, what it learnt from, how it scored, how it fails.

One builder (`build_card`, from the evaluation's `metrics.json` and `inference.json` and the
run's provenance) gives the card as JSON; one renderer (`card_markdown`) gives it as Markdown.
`register_model` writes both into every registered version's artifacts; `deepfake card`, the
app's "Model card" tab and the version's MLflow description show the same text. The registry's
facts (the version number, the run) are added where the card is shown: they exist only once
the version does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from deepfake_detector.core.artifacts import CARD_JSON, CARD_MARKDOWN
from deepfake_detector.core.model_ref import ModelRef
from deepfake_detector.sources.demographics import ATTRIBUTES

CARD_FORMAT = 1

INTENDED_USE = (
    "Flag face-swap and face-reenactment forgeries in photographs and short video clips of "
    "real people, as one piece of evidence for a person who checks the material (a newsroom, "
    "a fraud or trust-and-safety team). Each answer comes with the faces it judged, their "
    "calibrated P(fake) and a heat map; `uncertain` means the model cannot judge, not `real`."
)


def out_of_scope(min_face_px: int) -> list[str]:
    """What the model was never shown and must not be trusted on."""
    return [
        "fully synthetic faces (GAN or diffusion portraits of people who do not exist)",
        "text-to-video and other wholly generated clips",
        "audio and voice cloning",
        "edits that leave the face alone (backgrounds, bodies, captions, splices)",
        f"faces smaller than {min_face_px} px across (answered `uncertain`)",
        "a verdict as sole proof: it is a statistical score with the error rates below",
    ]


def data_versions(root: Path, stage: str = "split_dataset") -> dict[str, str]:
    """DVC's hash of each piece of data a stage's output was made from: its own data outputs
    and inputs, then those of the stages that made its inputs, back to the sources (both
    `dvc.lock` and the studies' lock, whose `import_faces` makes an imported face table);
    paths from the project root, empty without locks."""
    import yaml

    stages: dict[str, tuple[list[dict], list[dict]]] = {}
    for prefix, lock in (("", root / "dvc.lock"), ("studies:", root / "studies" / "dvc.lock")):
        if lock.is_file():
            found = (yaml.safe_load(lock.read_text()) or {}).get("stages") or {}
            for name, body in found.items():
                stages[prefix + name] = (body.get("deps") or [], body.get("outs") or [])

    def data(items: list[dict]) -> dict[str, str]:
        return {
            str(i["path"]): str(i["md5"])
            for i in items
            if str(i.get("path", "")).startswith(("data/", "../")) and i.get("md5")
        }

    out: dict[str, str] = {}
    todo, seen = [stage], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in stages:
            continue
        seen.add(name)
        deps, outs = (data(items) for items in stages[name])
        out |= deps | outs
        for dep in deps:  # the stage whose output holds this input made it
            todo += [
                other
                for other, (_, made) in stages.items()
                if any(dep == path or dep.startswith(path + "/") for path in data(made))
            ]
    return dict(sorted(out.items()))


def build_card(
    metrics: dict[str, Any],
    inference: dict[str, Any],
    *,
    model_name: str,
    data_terms: dict[str, str],
    provenance: dict[str, Any],
) -> dict[str, Any]:
    """The card as JSON: every number read from the evaluation's files, none computed here."""
    training = inference.get("training") or {}
    abstention = metrics.get("abstention") or inference.get("abstention") or {}
    calibration = {
        k: v for k, v in (inference.get("calibration") or {}).items() if k != "fpr_curve"
    }
    datasets = {
        name: {**row, "terms": data_terms.get(name, "not stated")}
        for name, row in (training.get("datasets") or {}).items()
    }
    return {
        "card_format": CARD_FORMAT,
        "model": {"name": model_name, **provenance},
        "demo": bool(training.get("demo")),
        "intended_use": INTENDED_USE,
        "out_of_scope": out_of_scope(int(abstention.get("min_face_px", 0))),
        "training_data": {
            "summary": training.get("summary", "not recorded"),
            "faces": training.get("faces"),
            "datasets": datasets,
        },
        "operating_point": metrics.get("operating_point") or {},
        "test": {
            "frame": _auc_part(metrics.get("frame") or {}),
            "video": _auc_part(metrics.get("video") or {}),
            "datasets": metrics.get("datasets") or {},
        },
        "calibration": {
            **calibration,
            "ece_frame": (metrics.get("frame") or {}).get("ece"),
            "ece_video": (metrics.get("video") or {}).get("ece"),
        },
        "groups": metrics.get("groups") or {},
        "abstention": abstention,
        "risk_coverage": metrics.get("risk_coverage") or {},
        "studies": inference.get("study") or {},
    }


def _auc_part(level: dict[str, Any]) -> dict[str, Any]:
    keys = ("auc", "auc_low", "auc_high", "fpr", "tpr", "accuracy", "ece", "n")
    return {k: level[k] for k in keys if k in level}


def write_card(folder: Path, card: dict[str, Any]) -> None:
    """The card's JSON and Markdown into a model folder."""
    from deepfake_detector.core.atomic import write_text

    write_text(folder / CARD_JSON, json.dumps(card, indent=2, default=str) + "\n")
    write_text(folder / CARD_MARKDOWN, card_markdown(card))


def read_card(folder: Path) -> dict[str, Any] | None:
    """The card a model folder carries, or None (a model registered before cards, a bare file)."""
    path = folder / CARD_JSON
    if not path.is_file():
        return None
    return json.loads(path.read_text())


# -- Markdown -------------------------------------------------------------------------------


def _num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _sig(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.6g}"


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * float(value):.1f}%"


def interval(row: dict[str, Any], key: str, fmt: Any = _num) -> str:
    value, low, high = row.get(key), row.get(f"{key}_low"), row.get(f"{key}_high")
    if value is None:
        return "n/a"
    if low is None or high is None:
        return fmt(value)
    return f"{fmt(value)} [{fmt(low)}, {fmt(high)}]"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def card_markdown(card: dict[str, Any], ref: ModelRef | None = None) -> str:
    """The card as Markdown; `ref` (which registered version it is) heads it when known."""
    model = card.get("model") or {}
    name = model.get("name", "model")
    registered = ref is not None and ref.version
    title = ref.label() if ref is not None and registered else f"{name} (not registered)"
    lines = [f"# Model card: {title}", ""]
    if card.get("demo"):
        lines += [
            "> **Demo model.** It learnt from the embedded demo set (synthetic identities made "
            "from three photographs); its verdicts say nothing about real deepfakes.",
            "",
        ]
    facts = []
    if ref is not None and registered:
        facts.append(["Registered version", f"`models:/{ref.name}/{ref.version}`"])
    if ref is not None and ref.run_id:
        facts.append(["MLflow run", f"`{ref.run_id}`"])
    for key, label in (
        ("git_commit", "Git commit"),
        ("package_version", "Package version"),
        ("model_sha256", "Model file sha256"),
        ("split_sha256", "Split table sha256"),
    ):
        if model.get(key):
            facts.append([label, f"`{model[key]}`"])
    op = card.get("operating_point") or {}
    if op.get("threshold") is not None:
        target = op.get("target_fpr")
        aim = f", chosen for {_pct(target)} of validation real faces called fake" if target else ""
        rule = f"fake when calibrated P(fake) >= {_num(op['threshold'])}{aim}"
        facts.append(["Operating point", rule])
    lines += [*_table(["", ""], facts), ""]

    lines += ["## Intended use", "", card.get("intended_use", ""), "", "## Out of scope", ""]
    lines += [f"- {item}" for item in card.get("out_of_scope", [])] + [""]

    data = card.get("training_data") or {}
    lines += ["## Training data", "", f"{str(data.get('summary', '')).capitalize()}.", ""]
    rows = [
        [
            name,
            f"{d.get('groups', 0):,} ({d.get('group_kind', '')})",
            f"{d.get('real_faces', 0):,}",
            f"{d.get('fake_faces', 0):,}",
            str(d.get("terms", "")),
        ]
        for name, d in (data.get("datasets") or {}).items()
    ]
    lines += [*_table(["dataset", "groups", "real faces", "fake faces", "terms"], rows), ""]

    test = card.get("test") or {}
    frame, video = test.get("frame") or {}, test.get("video") or {}
    lines += [
        "## Test results",
        "",
        "Groups (people, source videos) never trained on; 95% bootstrap intervals over "
        "videos. Rates at the operating point.",
        "",
        f"All test data: frame AUC {interval(frame, 'auc')}, video AUC {interval(video, 'auc')}; "
        f"false-positive rate {_pct(frame.get('fpr'))}, true-positive rate "
        f"{_pct(frame.get('tpr'))} (frames).",
        "",
    ]
    rows = [
        [
            name,
            f"{d.get('n', 0):,}",
            interval(d, "auc"),
            interval(d, "video_auc"),
            _pct(d.get("fpr")),
            _pct(d.get("tpr")) if d.get("n_fake") else "n/a",
            _num(d.get("ece")),
        ]
        for name, d in (test.get("datasets") or {}).items()
    ]
    header = ["dataset", "frames", "frame AUC", "video AUC", "FPR", "TPR", "ECE"]
    lines += [*_table(header, rows), ""]

    cal = card.get("calibration") or {}
    lines += [
        "## Calibration",
        "",
        f"{str(cal.get('method', 'no')).capitalize()} scaling fitted on "
        f"{cal.get('fitted_on', 0):,} validation faces; expected calibration error (15 bins) "
        f"on test: frames {_num(cal.get('ece_frame'))}, videos {_num(cal.get('ece_video'))}.",
        "",
    ]

    groups = card.get("groups") or {}
    lines += ["## Error rates by group", ""]
    if groups:
        lines += [
            f"Real faces of {groups.get('faces', 0):,} held-out labelled people called fake: "
            f"{_pct(groups.get('fpr'))} overall.",
            "",
        ]
        rows = [
            [attribute, value, f"{row['n']:,}", interval(row, "fpr", _pct)]
            for attribute in ATTRIBUTES
            for value, row in (groups.get(attribute) or {}).items()
        ]
        lines += [*_table(["attribute", "group", "faces", "false-positive rate"], rows), ""]
    else:
        lines += ["Not measured: no held-out face of this test split carries group labels.", ""]

    abst = card.get("abstention") or {}
    lines += [
        "## Uncertain answers",
        "",
        f"A face is `uncertain` when it is under {abst.get('min_face_px', 'n/a')} px, its "
        f"detector confidence under {abst.get('min_confidence', 'n/a')}, its sharpness under "
        f"{_num(abst.get('min_sharpness'), 1)}, or its P(fake) between "
        f"{_sig(abst.get('band_low'))} and {_sig(abst.get('band_high'))} (fitted for "
        f"{_pct(abst.get('coverage'))} of validation faces answered). On test:",
        "",
    ]
    rows = [
        [
            _pct(r.get("target_coverage")),
            _pct(r.get("answered")),
            _num(r.get("accuracy")),
            _pct(r.get("fpr")),
        ]
        for _, r in sorted((card.get("risk_coverage") or {}).items(), key=lambda kv: -float(kv[0]))
    ]
    lines += _table(["target coverage", "answered", "accuracy", "false-positive rate"], rows)
    lines += [""]

    studies = study_lines(card.get("studies") or {}) or ["None recorded for this model."]
    lines += ["## Studies", ""] + [f"- {line}" for line in studies] + [""]

    versions = model.get("data_versions") or {}
    if versions:
        lines += ["## Data versions (DVC)", ""]
        lines += _table(["output", "hash"], [[f"`{k}`", f"`{v}`"] for k, v in versions.items()])
        lines += [""]
    return "\n".join(lines)


def study_lines(study: dict[str, Any]) -> list[str]:
    """The studies' scores of this recipe or of the nearest one, each saying which."""
    lines = []
    if study.get("pooled_frame_auc") is not None:
        recipe = "this recipe" if study.get("same_recipe") else "another recipe than this one"
        lines.append(
            f"{study.get('name')} ({recipe}): pooled frame AUC "
            f"{interval(study, 'pooled_frame_auc')} on people never seen in training."
        )
    transfer = study.get("transfer") or {}
    if transfer.get("heldout_frame_auc"):
        recipe = "this recipe" if transfer.get("same_recipe") else "another recipe than this one"
        held = "; ".join(
            f"{name} {interval(dict(zip(('auc', 'auc_low', 'auc_high'), v, strict=True)), 'auc')}"
            for name, v in transfer["heldout_frame_auc"].items()
        )
        lines.append(
            f"{transfer.get('name')} ({recipe}): frame AUC on each dataset held out of "
            f"training (its people and its forgery pipeline never seen): {held}."
        )
    return lines
