"""Seed-compatible launcher: `python run.py 0,1,2,3` is `ant serve --gpus 0,1,2,3`."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from ant_scheduler.cli.main import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args and not args[0].startswith("-"):
        args = ["--gpus", args[0], *args[1:]]
    main(["serve", *args])
