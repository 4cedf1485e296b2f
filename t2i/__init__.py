"""t2i: train and run small text-to-image transformers, from a laptop CPU to many GPUs.

`import t2i` is cheap: the names below load their modules (and torch) on first use.

Layers, lowest first; a module imports only modules listed before it (tests/test_layers.py):

    _version, config, presets, fsutil, runtime, images, paths, objectives, samplers, model,
    captions, text, data/ (base, download, idx, cifar, captioned, registry, latents),
    checkpoint, codecs, pipeline, evaluation/ (metrics, classifier, protocol, sweep, reports),
    progress, loop, train, vae_train, bench, figures, web, cli/ (args, training, generation, evaluation)
"""

from ._version import __version__

_EXPORTS = {"Config": "config", "PRESETS": "presets", "get_preset": "presets",
            "Pipeline": "pipeline", "Trainer": "train"}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 't2i' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
