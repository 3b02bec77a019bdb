#!/usr/bin/env bash
# docs/app.png and docs/model_card.png: start the app on a registered model (MODEL, default the
# registry's champion), analyse a demo frame, take a screenshot of the result and of the card.
set -euo pipefail
port=${PORT:-7865}
image=${1:-$(ls data/interim/frames/*to*/000000.jpg | head -n 1)}
deepfake app --port "$port" ${MODEL:+--model "$MODEL"} > /tmp/deepfake-app-screenshot.log 2>&1 &
app=$!
trap 'kill $app 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  curl -sf "http://127.0.0.1:$port/" > /dev/null && break
  sleep 1
done
python docs/screenshot.py "http://127.0.0.1:$port" "$image" docs/app.png --card docs/model_card.png
