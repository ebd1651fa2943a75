"""``diffusionkit plugins new NAME``: a complete, working plugin package written from the files
in ``template/``. In their text ``{{name}}``, ``{{Name}}``, ``{{package}}``, ``{{distribution}}``,
``{{contract}}`` and ``{{core_version}}`` are replaced; in their paths ``_name_`` and
``_package_``; the ``.tmpl`` suffix is dropped (so the templates are never collected or linted).
"""

from __future__ import annotations

import keyword
import re
import shutil
from importlib.metadata import PackageNotFoundError, version
from importlib.resources import files
from pathlib import Path

from diffusionkit.config import available_options
from diffusionkit.errors import UsageError
from diffusionkit.modality import CONTRACT_VERSION
from diffusionkit.plugins import discover

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*[a-z0-9]|[a-z]")


def template_dir() -> Path:
    return Path(str(files("diffusionkit.scaffold") / "template"))


def check_name(name: str) -> None:
    """A plugin name is a lower-case identifier that no installed plugin or option uses."""
    if not NAME_PATTERN.fullmatch(name) or keyword.iskeyword(name):
        raise UsageError(f"plugin name '{name}' must be lower-case letters, digits and '_', starting with a letter "
                         f"(e.g. sensor)")
    if name in {p.name for p in discover(include_incompatible=True)}:
        raise UsageError(f"a plugin named '{name}' is already installed; choose another name")
    options = available_options()
    for group in ("modality", "data"):
        if name in options.get(group, []):
            raise UsageError(f"'{name}' is already a {group} option ({group}={name}); choose another name")


def placeholders(name: str) -> dict[str, str]:
    try:
        core_version = version("diffusionkit")
    except PackageNotFoundError:  # a source tree that is not installed
        core_version = "0.1.0"
    return {
        "{{name}}": name,
        "{{Name}}": "".join(part.capitalize() for part in name.split("_")),
        "{{package}}": f"diffusionkit_{name}",
        "{{distribution}}": f"diffusionkit-{name.replace('_', '-')}",
        "{{contract}}": str(CONTRACT_VERSION),
        "{{core_version}}": core_version,
    }


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def new_plugin(name: str, dest: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Write the plugin package ``diffusionkit-<name>`` into ``dest`` (default: a folder of that
    name here), which must not exist yet; return its root and the files written. A write that
    fails leaves nothing behind."""
    check_name(name)
    values = placeholders(name)
    root = Path(dest if dest is not None else values["{{distribution}}"]).expanduser()
    if root.exists():
        raise UsageError(f"'{root}' already exists; choose a new dir= (nothing was written)")
    written = []
    try:
        for source in sorted(template_dir().rglob("*.tmpl")):
            relative = source.relative_to(template_dir()).as_posix().removesuffix(".tmpl")
            target = root / re.sub(r"_package_|_name_",
                                   lambda m: values["{{package}}"] if m[0] == "_package_" else name, relative)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(_fill(source.read_text(encoding="utf-8"), values), encoding="utf-8")
            written.append(target)
    except OSError as err:
        shutil.rmtree(root, ignore_errors=True)
        raise UsageError(f"cannot write the plugin into '{root}': {err.strerror or err}; "
                         f"choose a writable dir= (nothing was left behind)") from None
    return root, written
