#!/usr/bin/env bash
# docs/app.png, docs/model_card.png and docs/app_video.png: start the app on a registered model
# (MODEL, default the registry's champion), analyse a picture (first argument, default a demo
# frame) and a clip (second argument, default a demo clip), and take screenshots of the answers
# and of the model card.
set -euo pipefail
port=${PORT:-7865}
image=${1:-$(ls data/interim/frames/*to*/000000.jpg | head -n 1)}
clip=${2:-$(ls data/demo/videos/fake/*.mp4 | head -n 1)}
deepfake app --port "$port" ${MODEL:+--model "$MODEL"} > /tmp/deepfake-app-screenshot.log 2>&1 &
app=$!
trap 'kill $app 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/" > /dev/null && break
  sleep 1
done
python docs/screenshot.py "http://127.0.0.1:$port" "$image" docs/app.png --card docs/model_card.png \
  --video "$clip" docs/app_video.png
