#!/usr/bin/env bash
# One command from a fresh machine to a trained Fashion-MNIST text-to-image model:
# install t2i, find or fetch the data, train the `fmnist` preset (10 CPU minutes by default),
# then write a sample grid and a denoising strip to runs/fmnist/samples-final/.
# Pass extra `t2i train` arguments through, e.g. `./run.sh --max-minutes 3 model.depth=4`.
set -euo pipefail
cd "$(dirname "$0")"
if ! [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null \
   && [ "$(id -u)" = 0 ]; then
  apt-get install -y -qq dataset-fashion-mnist || echo "apt could not install the data; t2i will download it"
fi
python3 -m pip install -q torch==2.13.0  # CPU/GPU wheel; an unpinned torch may pull a mismatched build
python3 -m pip install -q -e .
t2i train --preset fmnist --out runs/fmnist "$@"
t2i sample --checkpoint runs/fmnist --num-per-prompt 8 --strip --out runs/fmnist/samples-final
