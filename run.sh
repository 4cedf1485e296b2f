#!/usr/bin/env bash
# The two commands of the README, set-up included, for a fresh machine:
#   ./run.sh        install t2i, find or fetch Fashion-MNIST, train the `fmnist-text` preset (10
#                   CPU minutes), then write a sample grid and a denoising strip to
#                   runs/fmnist-text/samples-final/. Extra arguments go to `t2i train`, e.g.
#                   ./run.sh --max-minutes 3 model.depth=4
#   ./run.sh test   install t2i with its test extra and run the test suite (extra args: pytest's)
set -euo pipefail
cd "$(dirname "$0")"

setup() {
  local need=()
  # Debian's copy of the dataset (without it t2i downloads from the official mirror), and WordNet,
  # the dictionary prompts' unknown words are read in (without it only t2i's supplement is).
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] || need+=(dataset-fashion-mnist)
  [ -f /usr/share/wordnet/data.noun ] || need+=(wordnet-base)
  if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq "${need[@]}" || { apt-get update -qq && apt-get install -y -qq "${need[@]}"; }) \
      || echo "apt could not install ${need[*]}; t2i will download the data and read prompts without WordNet"
  fi
  # Pin torch first: left to resolve freely, pip may pull a multi-GB build other than the one wanted.
  python3 -m pip install -q torch==2.13.0
  python3 -m pip install -q -e ".$1"
}

if [ "${1:-}" = test ]; then
  shift
  if ! [ -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    # The demo's end-to-end test drives the system's Chromium (Playwright cannot fetch browsers
    # everywhere); without it that test is skipped.
    (apt-get install -y -qq chromium || { apt-get update -qq && apt-get install -y -qq chromium; }) \
      || echo "apt could not install chromium; the browser test will be skipped"
  fi
  setup "[test]"
  exec python3 -m pytest -q "$@"
fi
setup "[text,demo]"
t2i train --preset fmnist-text --out runs/fmnist-text "$@"
t2i sample --checkpoint runs/fmnist-text --num-per-prompt 8 --strip --out runs/fmnist-text/samples-final
