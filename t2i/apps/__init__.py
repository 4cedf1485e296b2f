"""Applications over the pipeline, each its own module so that one's dependencies (Gradio,
TensorBoard's reader) load only when it is used: `explain` (how a prompt was read), `figures`
(denoising strips, GIFs, curves) and `web` (the Gradio demo).
"""

__all__ = ["explain", "figures", "web"]
