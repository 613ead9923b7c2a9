"""CONTRIBUTING.md's map of the package is true: it names every module, and the import rule it
states (models, trainers and data never import ``jaxseq.runner``) holds in the source."""

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "jaxseq"


def layout_entries() -> dict[str, str]:
    """``{folder or file entry: its text}`` of the layout block in CONTRIBUTING.md: an entry starts
    at the beginning of a line (``jaxseq/train/``, ``jaxseq/config.py, config_docs.py``) and runs to
    the next one."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    block = re.search(r"## Layout\n\n```\n(.*?)```", text, re.S).group(1)
    entries, current = {}, None
    for line in block.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0].rstrip(",")
            entries[current] = line
        elif current:
            entries[current] += " " + line.strip()
    return entries


def test_the_layout_names_every_module():
    entries = layout_entries()
    missing = []
    for module in sorted(PACKAGE.rglob("*.py")):
        folder = module.parent.relative_to(ROOT).as_posix() + "/"
        if folder == "jaxseq/":  # a top-level module: named in an entry of its own, beside others
            text = " ".join(text for entry, text in entries.items() if entry.endswith(".py"))
        else:
            text = entries.get(folder, "")
        if module.name == "__init__.py" and folder != "jaxseq/runner/":
            continue  # an empty package marker (the runner's holds its code)
        if not re.search(rf"(?<![\w.]){re.escape(module.name)}\b", text):
            missing.append(module.relative_to(ROOT).as_posix())
    assert not missing, f"CONTRIBUTING.md's layout does not name: {', '.join(missing)}"


def test_no_two_modules_share_a_name():
    """A module's name says what it is wherever it is mentioned (``sequence_trainer``, not a second ``sequence``)."""
    by_name: dict[str, list[str]] = {}
    for module in sorted(PACKAGE.rglob("*.py")):
        if module.name != "__init__.py":
            by_name.setdefault(module.stem, []).append(module.relative_to(ROOT).as_posix())
    assert {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def test_no_two_registries_share_a_name():
    """One name -> object table of each kind, under one name (``MODELS`` and ``GRAPH_MODELS``, not two ``MODELS``)."""
    by_name: dict[str, list[str]] = {}
    for module in sorted(PACKAGE.rglob("*.py")):
        for node in ast.parse(module.read_text()).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id.isupper() and isinstance(value, (ast.Dict, ast.DictComp)):
                by_name.setdefault(target.id, []).append(module.relative_to(ROOT).as_posix())
    assert by_name and {name: paths for name, paths in by_name.items() if len(paths) > 1} == {}


def imported_modules(path: pathlib.Path) -> set[str]:
    """Every module ``path`` imports (``import a.b`` and ``from a.b import c`` give ``a.b``, and
    ``from a import b`` also ``a.b``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def test_models_trainers_and_data_never_import_the_runner():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for folder in ("models", "train", "data")
        for path in sorted((PACKAGE / folder).rglob("*.py"))
        for name in sorted(imported_modules(path))
        if name == "jaxseq.runner" or name.startswith("jaxseq.runner.")
    ]
    assert not offenders, offenders


def test_the_import_reader_sees_each_form_of_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import jaxseq.runner\nfrom jaxseq import runner\nfrom jaxseq.runner.ray_tasks import x\n")
    assert {"jaxseq.runner", "jaxseq.runner.ray_tasks"} <= imported_modules(module)
