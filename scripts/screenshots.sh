#!/usr/bin/env bash
# Regenerates docs/*.png from the real app in a real X window (Xvfb), as a user sees it.
# Needs: apt-get install -y xvfb imagemagick libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0
# Usage: scripts/screenshots.sh RUN_DIR DATA_SOURCE IMAGE...
set -euo pipefail
cd "$(dirname "$0")/.."
run_dir=$1; data=$2; shift 2
export TRANSFERLAB_HOME=${TRANSFERLAB_HOME:-$(mktemp -d)}
Xvfb :99 -screen 0 1400x900x24 >/dev/null 2>&1 &
xvfb=$!
trap 'kill $xvfb' EXIT
sleep 1
export DISPLAY=:99
mkdir -p docs
shoot() {  # $1 = name, rest = app options; the app renders itself, then the screen is grabbed
  .venv/bin/python main.py --screenshot "docs/$1.png" "${@:2}"
}
shoot data --tab data --data "$data"
shoot model --tab model --data "$data"
shoot train --tab train --run "$run_dir"
shoot inference --tab inference --predict "$@" --cam
ls -la docs
