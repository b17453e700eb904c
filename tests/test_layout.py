"""The house rules: the product apart from the sample, a light import, a helpful CLI."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

try:  # Python 3.11+; tomli is the same parser before that
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from intake_vbo.cli import parser

PACKAGE = Path(__file__).resolve().parents[1] / "intake_vbo"
TEST_ONLY = {"moto", "unittest", "boto3", "botocore", "werkzeug"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, anywhere in it, as absolute dotted names."""
    found = set()
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(filter(None, [base, node.module or ""]))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return found


def product_files() -> list[Path]:
    return [p for p in PACKAGE.rglob("*.py") if "sample" not in p.relative_to(PACKAGE).parts]


@pytest.mark.parametrize("path", product_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_product_never_imports_the_sample_or_test_tools(path):
    modules = imported_modules(path)
    assert not {m for m in modules if m.split(".")[0] in TEST_ONLY}
    sample = {m for m in modules if m.startswith("intake_vbo.sample")}
    # The CLI's demo command is the one door into the sample, opened inside the command.
    assert sample <= ({"intake_vbo.sample.demo", "intake_vbo.sample.demo.run_demo"}
                      if path.name == "cli.py" else set())  # fmt: skip


def _environment_reads(path: Path) -> list[str]:
    """Where a file reads the environment, or names a ``VBO_*`` variable outright."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            found.append(f"{path.name}:{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.Constant) and re.fullmatch(r"VBO_[A-Z0-9_]+", str(node.value)):
            found.append(f"{path.name}:{node.lineno}: {node.value}")
    return found


def test_only_the_settings_module_reads_vbo_variables():
    reads = {str(p.relative_to(PACKAGE)): _environment_reads(p) for p in product_files()}
    assert {name for name, found in reads.items() if found} == {"base/settings.py"}


def _readme_variables(section: str) -> set[str]:
    """The ``VBO_*`` variables of the tables in one README section (``## Title``)."""
    readme = (PACKAGE.parent / "README.md").read_text()
    body = readme.split(f"\n{section}\n", 1)[1]
    depth = section.count("#")
    body = re.split(rf"\n#{{1,{depth}}} ", body, maxsplit=1)[0]
    return set(re.findall(r"^\| `(VBO_[A-Z0-9_]+)`", body, re.MULTILINE))


def test_readme_lists_exactly_the_settings_the_package_reads():
    from intake_vbo.base.settings import SETTINGS

    assert _readme_variables("## Settings") == {s.name for s in SETTINGS if not s.hook}
    assert _readme_variables("### Test hooks") == {s.name for s in SETTINGS if s.hook}


def test_sample_package_is_declared_for_the_wheel():
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    declared = set(config["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(p.parent.relative_to(PACKAGE.parent).parts) for p in PACKAGE.rglob("__init__.py")
    }
    assert on_disk <= declared


def test_import_is_light():
    code = (
        "import sys, intake_vbo; heavy = {'pandas', 'pyarrow', 'duckdb', 'requests', 'pynwb', "
        "'h5py', 'intake', 'moto'} & set(sys.modules); print(sorted(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_load_on_first_use():
    import intake_vbo

    for name in intake_vbo.__all__:
        assert getattr(intake_vbo, name) is not None
    assert set(intake_vbo.__all__) <= set(dir(intake_vbo))
    with pytest.raises(AttributeError):
        intake_vbo.no_such_name  # noqa: B018


def test_every_cli_argument_has_help():
    top = parser()
    subcommands = next(a for a in top._actions if a.dest == "command").choices
    for name, sub in subcommands.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"intake-vbo {name}: {action.dest} has no help"


def test_demo_without_the_extra_says_what_to_install(tmp_path):
    # moto made unimportable, as on an install without the [demo] extra
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'moto':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from intake_vbo.cli import main\n"
        f"sys.exit(main(['demo', '--workdir', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "pip install 'intake-vbo[demo]'" in done.stderr and "moto" in done.stderr
    assert not any(tmp_path.iterdir())


def test_readme_layout_matches_the_package():
    """The Development section of the README lists every module, and only those."""
    readme = (PACKAGE.parent / "README.md").read_text()
    block = readme.split("\nintake_vbo/\n", 1)[1].split("\n```", 1)[0]
    listed, folder = set(), ""
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        name = line.split()[0] if line.strip() else ""
        if indent == 2 and name.endswith("/"):
            folder = name
        elif indent in (2, 4) and name.endswith(".py"):
            listed.add((folder if indent == 4 else "") + name)
        elif indent == 0 and name:
            break  # past intake_vbo/
    on_disk = {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")}
    on_disk -= {p for p in on_disk if p.endswith("__init__.py") and "/" in p}
    assert listed == on_disk
