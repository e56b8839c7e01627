"""What the logged model declares: pinned requirements that cover its code's imports, and its code."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from rakuten_mlops.models.pyfunc import (
    MODEL_DISTRIBUTIONS,
    MODEL_SIGNATURE,
    SENTENCE_DISTRIBUTIONS,
    VISION_DISTRIBUTIONS,
    package_code,
    pip_requirements,
)


def _name(requirement: str) -> str:
    return requirement.split("==")[0].lower()


def _module_level_imports(path: Path) -> set[str]:
    """Top-level package names imported at module level (what loading the module needs)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_text_models_pin_everything_and_need_no_torch() -> None:
    reqs = pip_requirements(with_vision=False)
    assert all("==" in r for r in reqs), reqs
    assert {_name(r) for r in reqs} == {n.lower() for n in MODEL_DISTRIBUTIONS}
    assert "torch" not in {_name(r) for r in reqs}
    assert {"torch", *VISION_DISTRIBUTIONS} <= {_name(r) for r in pip_requirements(with_vision=True)}
    # The sentence encoder only for a model that embeds sentences.
    assert not set(SENTENCE_DISTRIBUTIONS) & {_name(r) for r in reqs}
    with_use = {_name(r) for r in pip_requirements(with_vision=False, with_sentences=True)}
    assert set(SENTENCE_DISTRIBUTIONS) <= with_use and "torch" not in with_use


def test_requirements_cover_every_import_of_the_model_code() -> None:
    """The project modules MLflow imports to load the model, and what each imports at module level."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, rakuten_mlops.models.pyfunc, rakuten_mlops.models.product;"
         "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.startswith('rakuten_mlops')))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert any(p.endswith("config.py") for p in loaded)  # pydantic-settings and yaml come from here
    imported = set().union(*(_module_level_imports(Path(p)) for p in loaded))
    third_party = imported - set(sys.stdlib_module_names) - {"rakuten_mlops", "__future__"}
    by_module = metadata.packages_distributions()
    declared = {n.lower() for n in MODEL_DISTRIBUTIONS}
    missing = {
        m: by_module.get(m) for m in third_party if not {d.lower() for d in by_module.get(m, [])} & declared
    }
    assert not missing, f"imported by the model's code but not in its requirements: {missing}"


def test_one_signature_with_optional_description_and_image() -> None:
    inputs = {c.name: c for c in MODEL_SIGNATURE.inputs.inputs}
    assert [n for n, c in inputs.items() if c.required] == ["designation"]
    assert str(inputs["image"].type) == "DataType.binary"


def test_package_code_is_the_package_without_bytecode(tmp_path: Path) -> None:
    code = package_code(tmp_path)
    assert code.name == "rakuten_mlops"
    assert (code / "models" / "pyfunc_code.py").is_file() and (code / "config.py").is_file()
    assert not list(code.rglob("__pycache__")) and not list(code.rglob("*.pyc"))
