"""`python -m deepfake_detector.cli`: the `deepfake` command."""

from deepfake_detector.cli import main

main()
