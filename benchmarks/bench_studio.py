"""How fast the studio answers, through the HTTP API its page uses (gradio_client on the page's
``/run`` event): studio start to a usable page, and one vary of a 1 s sample with 8 variations
after a warm-up (seconds per variation). Bars (issue 16): <= 10 s to a usable page, <= 0.5 s per
variation, on 2 CPU cores.

    .venv/bin/python benchmarks/bench_studio.py [--ckpt drums_starter] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from gradio_client import Client, handle_file

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "plugins" / "diffusionkit-audio" / "diffusionkit_audio" / "examples" / "kick.wav"
#: the page's fields (``page.FIELDS``, in its order) as a user leaves them for a vary; the
#: sampling fields (steps, guidance, sampler) are the vary command's defaults, as the page shows them
SETTINGS = dict(label="auto", target="snare", prompt="", negative_prompt="", n=8, strength=0.3, method="sdedit",
                start=0.25, end=0.75, context=0.5, times=1, seed=0)


def page_defaults(ckpt: str) -> dict:
    """The sampling fields the page fills in for ``vary`` (``Page.defaults``: the command's own)."""
    from diffusionkit.config import compose_config

    cfg = compose_config("vary", [f"ckpt={ckpt}", f"input={SAMPLE}"])
    return {"steps": int(cfg.steps), "guidance": float(cfg.guidance), "sampler": str(cfg.sampler.name)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(ckpt: str, out: Path) -> tuple[subprocess.Popen, str, float]:
    """The studio as a user starts it, and the seconds until its page answers with the page."""
    port = free_port()
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "diffusionkit.cli", "studio", f"ckpt={ckpt}", f"port={port}",
                                f"out={out}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    while True:
        try:
            page = urllib.request.urlopen(url, timeout=2).read()
            urllib.request.urlopen(url + "config", timeout=5).read()  # what the browser fetches to draw the page
            if b"gradio" in page.lower():
                return process, url, time.perf_counter() - start
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"the studio stopped: {process.stdout.read()}")
            time.sleep(0.1)


def vary(client: Client, settings: dict, seed: int) -> tuple[float, str]:
    """One vary through the page's ``/run`` event: [operation, *fields, media options, the first
    input of each kind of widgets (audio first), the second input of each, the take history]."""
    from diffusionkit.apps.studio.page import FIELDS

    settings = {**settings, "seed": seed}
    values = [settings[name] for name in FIELDS]  # a field the page gains and this script lacks: a KeyError here
    inputs = [handle_file(str(SAMPLE)), None, None, None, None, None]
    start = time.perf_counter()
    result = client.predict("vary", *values, "", *inputs, [], api_name="/run")
    return time.perf_counter() - start, result[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", default="drums_starter")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = {**SETTINGS, **page_defaults(args.ckpt), "n": args.n}
    with tempfile.TemporaryDirectory() as tmp:
        process, url, ready = start_studio(args.ckpt, Path(tmp) / "out")
        try:
            # no TLS on a local http page: gradio_client otherwise builds a certificate store for every
            # file it downloads (1.8 s of 12 s sampled by py-spy), which no browser does
            client = Client(url, verbose=False, ssl_verify=False)
            warm, status = vary(client, settings, seed=0)
            if not status.startswith("take #"):
                raise SystemExit(f"vary failed: {status}")
            times = [vary(client, settings, seed=1 + i)[0] for i in range(args.repeats)]
        finally:
            process.terminate()
            process.wait(timeout=30)
    per = statistics.median(times) / args.n
    print(f"ckpt={args.ckpt}  cores={os.cpu_count()}  torch threads: default  steps={settings['steps']}  "
          f"guidance={settings['guidance']}  sampler={settings['sampler']}  strength={settings['strength']}")
    print(f"studio start to usable page: {ready:6.2f} s   (bar <= 10 s)")
    print(f"first vary n={args.n} (warm-up):  {warm:6.2f} s")
    print(f"vary n={args.n} after warm-up:    {statistics.median(times):6.2f} s median of {args.repeats} "
          f"({', '.join(f'{t:.2f}' for t in times)})")
    print(f"seconds per variation:       {per:6.3f} s   (bar <= 0.5 s)")


if __name__ == "__main__":
    main()
