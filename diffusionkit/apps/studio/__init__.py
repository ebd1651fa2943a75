"""``diffusionkit studio``: a local web page to try a model on one's own files.

Drop a file, pick an operation (the sampling commands: generate, vary, convert, inpaint, extend,
interpolate, and roundtrip), listen or look, keep the good takes. The model stays loaded, inputs
are read once per content, requests queue one after another, and every file lies inside ``out=``.
The page is built from what the model's modality declares; the core names no medium.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from omegaconf import DictConfig

from diffusionkit.errors import UsageError

MISSING_GRADIO = ("the studio needs gradio, an optional extra: pip install -c constraints.txt -e '.[studio]' "
                  "(make install does it)")


def studio_folder(out: str | None) -> Path:
    """``out=`` (new or empty), else ``outputs/studio/<date>_<time>``; made now, taken back by the
    command if it fails before writing anything."""
    from diffusionkit.apps.common import output_dir

    return output_dir("studio", out)


def keep_files_inside(out: Path) -> None:
    """Point Gradio's upload and cache folder inside ``out`` and keep it offline and quiet; must
    run before gradio is imported (it reads these once)."""
    os.environ["GRADIO_TEMP_DIR"] = str((out / ".gradio").resolve())
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("MPLCONFIGDIR", str((out / ".gradio" / "matplotlib").resolve()))


def build(cfg: DictConfig, out: Path):
    """The studio (model loaded) and its page, not launched."""
    keep_files_inside(out)
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise UsageError(MISSING_GRADIO) from None
    from diffusionkit.apps.common import runtime
    from diffusionkit.apps.studio.engine import Limits, Studio
    from diffusionkit.apps.studio.page import Page
    from diffusionkit.apps.studio.shelf import ModelShelf, first_choice
    from diffusionkit.plugins import declared_file_widgets

    choice = first_choice(cfg.ckpt)
    shelf = ModelShelf(Path(str(cfg.runs)).expanduser(), extra=[str(cfg.ckpt)] if cfg.ckpt else [], **runtime(cfg))
    shelf.select(choice)
    studio = Studio(out, shelf, Limits(upload_bytes=int(float(cfg.max_upload_mb) * 2**20), items=int(cfg.max_items)))
    return studio, Page(studio, declared_file_widgets()).build()


def run(cfg: DictConfig) -> None:
    start = time.perf_counter()
    out = studio_folder(cfg.out)
    studio, page = build(cfg, out)
    page.queue(default_concurrency_limit=1, max_size=None)
    shown_host = "localhost" if cfg.host in ("127.0.0.1", "localhost") else cfg.host
    print(f"diffusionkit studio: http://{shown_host}:{cfg.port} (model {studio.shelf.current_choice}; "
          f"files in {out}; ready in {time.perf_counter() - start:.1f} s; Ctrl+C stops it)", flush=True)
    if cfg.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"diffusionkit studio: listening on {cfg.host}: anyone who can reach this machine can use the "
              f"model and read the files in {out}", flush=True)
    page.launch(server_name=str(cfg.host), server_port=int(cfg.port), max_file_size=int(float(cfg.max_upload_mb) * 2**20),
                allowed_paths=[str(out.resolve())], show_error=False, quiet=True, ssr_mode=False,
                footer_links=["api"])
