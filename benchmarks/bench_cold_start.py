"""Cold starts: a fresh ``diffusionkit`` process from the shell to its exit (issue 20's bars:
``--help`` <= 1 s, ``vary ckpt=drums_starter input=kick.wav n=1`` <= 3 s; and an image model's
``generate``, of an untrained ``experiment=digits_fast`` model written first). Beside them, a
musician's batch: 8 variations of one kick, and of each of 8 kicks in a folder (``input=FOLDER``:
one process, the model loaded once), per file.

    python benchmarks/bench_cold_start.py [--input KICK.wav] [--repeats 5]

Each command runs ``--repeats`` times as its own process (the median and the fastest wall
times are printed), then once under ``python -X importtime`` to list the packages whose import
costs most. Without ``--input`` the kick is a real one-shot of Debian's hydrogen-drumkits when
installed, else a synthetic 1 s kick written to a temporary folder.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from common import print_table  # noqa: E402

#: the files of the folder that ``input=FOLDER`` varies
FOLDER_FILES = 8
HYDROGEN_KICK = Path("/usr/share/hydrogen/data/drumkits/ElectricEmpireKit/EE_Kick_Low_1.flac")


def a_kick(folder: Path) -> Path:
    """A kick to vary: hydrogen's, else a synthetic one (a decaying sine sweep)."""
    if HYDROGEN_KICK.is_file():
        return HYDROGEN_KICK
    import numpy as np
    import soundfile

    rate = 44100
    t = np.arange(rate) / rate
    kick = np.sin(2 * np.pi * (50 + 100 * np.exp(-t * 30)) * t) * np.exp(-t * 8)
    path = folder / "kick.wav"
    soundfile.write(path, kick.astype("float32"), rate)
    return path


def wall_times(command: list[str], repeats: int, cwd: Path) -> list[float]:
    """Wall seconds of each run; ``{run}`` in an argument becomes the run's number (a fresh out=)."""
    times = []
    for run in range(repeats):
        start = time.perf_counter()
        done = subprocess.run([part.replace("{run}", str(run)) for part in command], cwd=cwd, capture_output=True,
                              text=True)
        times.append(time.perf_counter() - start)
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return times


def heaviest_imports(arguments: list[str], cwd: Path, top: int = 6) -> str:
    """The packages whose imports take longest in one run (``python -X importtime``), self time summed."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "diffusionkit.cli", *arguments], cwd=cwd,
                          capture_output=True, text=True)
    per_package: Counter[str] = Counter()
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            per_package[match.group(2).split(".")[0]] += int(match.group(1))
    return ", ".join(f"{name} {micros / 1e6:.2f} s" for name, micros in per_package.most_common(top))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    executable = shutil.which("diffusionkit") or str(Path(sys.executable).with_name("diffusionkit"))
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        kick = args.input.resolve() if args.input else a_kick(folder)
        from tests.untrained_bundle import untrained_bundle

        digits = untrained_bundle(["modality=image", "data=digits", "experiment=digits_fast"],
                                  [str(d) for d in range(10)], folder / "digits")
        kicks = folder / "kicks"
        kicks.mkdir()
        for i in range(FOLDER_FILES):
            shutil.copy(kick, kicks / f"kick_{i}{kick.suffix}")
        commands = {
            "diffusionkit --help": ["--help"],
            "diffusionkit vary ckpt=drums_starter input=KICK n=1": ["vary", "ckpt=drums_starter", f"input={kick}",
                                                                    "n=1", f"out={folder / 'vary_{run}'}"],
            "diffusionkit generate ckpt=DIGITS n=8 label=3 (an image model)": [
                "generate", f"ckpt={digits}", "n=8", "label=3", f"out={folder / 'generate_{run}'}"],
            "diffusionkit vary ckpt=drums_starter input=KICK n=8": [
                "vary", "ckpt=drums_starter", f"input={kick}", "n=8", f"out={folder / 'vary8_{run}'}"],
            f"diffusionkit vary ckpt=drums_starter input=FOLDER n=8 ({FOLDER_FILES} kicks), per file": [
                "vary", "ckpt=drums_starter", f"input={kicks}", "n=8", f"out={folder / 'folder_{run}'}"],
        }
        rows = []
        for name, arguments in commands.items():
            times = wall_times([executable, *arguments], args.repeats, folder)
            if name.endswith("per file"):
                times = [t / FOLDER_FILES for t in times]
            once = [part.replace("{run}", "importtime") for part in arguments]
            rows.append([name, f"{statistics.median(times):.2f}", f"{min(times):.2f}", heaviest_imports(once, folder)])
    print(f"fresh processes, {args.repeats} runs each; input {kick}")
    print_table(["command", "median s", "fastest s", "heaviest imports (self time, one run)"], rows)


if __name__ == "__main__":
    main()
