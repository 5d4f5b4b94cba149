"""The workflow as Snakemake's own linter sees it, and the conda environment its rules declare.

Conda channels cannot be reached from our machines, so the environment is checked as a file (its pins against
pyproject.toml's), never installed here."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).parents[1]
# The lints that remain, each with the reason it stays.
ALLOWED = {
    ("rule paper", "Specify a conda environment or container for each rule."):
        "the paper needs TeX (latexmk), which comes from the system (the README's apt-get line), not from conda",
}


def lints(text: str) -> set[tuple[str, str]]:
    """(what, title) of each lint in `snakemake --lint`'s text: what is `rule NAME` or `snakefile PATH`."""
    found, what = set(), None
    for line in text.splitlines():
        header = re.match(r"Lints for (rule \S+|snakefile \S+?):?( \(line.*)?$", line)
        if header:
            what = header[1]
        elif (item := re.match(r"    \* (.+):$", line)) and what:
            found.add((what, item[1]))
    return found


def test_snakemake_lint_reports_only_the_listed_lints(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    result = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                             "--lint"], capture_output=True, text=True)
    said = result.stdout + result.stderr
    assert "Lints for" in said or "Congratulations" in said, said[-3000:]
    assert lints(said) == set(ALLOWED), said[-3000:]


def test_lints_are_read_from_snakemakes_text():
    text = ("Lints for snakefile /w/rules/a.smk:\n    * Mixed rules and functions in same snakefile.:\n      body\n\n"
            "Lints for rule b (line 3, /w/rules/b.smk):\n    * No log directive defined:\n      body\n")
    assert lints(text) == {("snakefile /w/rules/a.smk", "Mixed rules and functions in same snakefile."),
                           ("rule b", "No log directive defined")}


def test_conda_environment_pins_what_pyproject_pins():
    """Every rule's environment installs pyproject.toml's dependencies, word for word, on a Python it allows."""
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "workflow/envs/agd.yaml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    assert pip == project["dependencies"], "copy pyproject.toml's dependencies into workflow/envs/agd.yaml:\n" + \
        "\n".join(f"      - {requirement}" for requirement in project["dependencies"])
    python = next(item for item in env["dependencies"] if isinstance(item, str) and item.startswith("python="))
    assert python.removeprefix("python=") in SpecifierSet(project["requires-python"])
    assert "pip" in env["dependencies"] and env["channels"][0] == "conda-forge"


def test_the_workflow_uses_no_private_snakemake_attribute():
    files = [REPO / "Snakefile", *(REPO / "workflow").rglob("*.smk"), *(REPO / "workflow").rglob("*.py")]
    private = re.compile(r"\bworkflow\._\w+|\[\"_\w+\"\]|from snakemake\.common\b")
    found = {f"{path.relative_to(REPO)}: {match[0]}" for path in files for match in private.finditer(path.read_text())}
    assert not found
