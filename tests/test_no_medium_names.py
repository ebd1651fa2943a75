"""The core names no medium in code (issue 14): no identifier or string literal of a module under
``diffusionkit/`` contains one of the words below; plugins own their media. Docstrings and
comments may name media (examples such as ``modality=audio`` explain the core to people)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "diffusionkit"
MEDIUM = re.compile("image|audio|video|frame|pixel|spectrogram", re.IGNORECASE)
#: whole words that contain one of those words without naming a medium.
ALLOWED = {
    "framework",  # safetensors' safe_open(path, framework="pt"): the tensor library, not a video frame
}
#: the tokens that can name something: identifiers, string literals and (Python >= 3.12) f-string parts.
NAMING = {tokenize.NAME, tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}

Position = tuple[int, int]


def is_documentation(node: ast.AST) -> bool:
    """A bare string statement: the docstring of a module, class or function, or a string that
    documents an attribute."""
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def documentation(tree: ast.AST) -> list[tuple[Position, Position]]:
    """Where the documentation strings are, as (start, end) token positions."""
    return [((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset))
            for node in ast.walk(tree) if is_documentation(node)]


def medium_names(source: str) -> list[tuple[int, str]]:
    """(line, word) for each word of an identifier or a string literal (outside docstrings) that
    contains a medium's name and is not in :data:`ALLOWED`."""
    docs = documentation(ast.parse(source))
    found = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in NAMING or any(start <= token.start and token.end <= end for start, end in docs):
            continue
        found += [(token.start[0], word) for word in re.findall(r"\w+", token.string)
                  if MEDIUM.search(word) and word.lower() not in ALLOWED]
    return found


SNIPPET = '''"""A module docstring may say image."""
# a comment may say audio
def count(frame_count):
    """A docstring may say video."""
    kind = "pixel"
    #: an attribute's comment: spectrogram
    label = f"{kind} Spectrogram"
    return safe_open(kind, framework="pt"), Audio, label
'''


def test_the_scanner_finds_names_and_strings_but_not_documentation():
    assert medium_names(SNIPPET) == [(3, "frame_count"), (5, "pixel"), (7, "Spectrogram"), (8, "Audio")]
    assert medium_names('"""Only a docstring: image, audio, video, frame, pixel."""\nx = 1  # spectrogram\n') == []


def test_no_core_module_names_a_medium_in_code():
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 50, CORE  # the scan reads the core, not an empty folder
    hits = [f"{path.relative_to(CORE.parent)}:{line}: {word}" for path in modules
            for line, word in medium_names(path.read_text(encoding="utf-8"))]
    assert hits == [], "the core names media in code (plugins own them; use neutral words):\n" + "\n".join(hits)
