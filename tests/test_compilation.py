"""--compile auto checks that torch.compile works on the node before compiling the model, and trains eager where it
does not. The failing node is made real: Inductor is pointed at a C++ compiler that does not exist."""

import json

import pytest
import torch
from test_train_lm import text_file, train  # noqa: F401 (a fixture)

from agd.jobs import compilation


@pytest.fixture
def no_compiler(monkeypatch):
    import torch._inductor.config

    monkeypatch.setattr(torch._inductor.config.cpp, "cxx", (None, "/nonexistent/c++"))


def test_compile_auto_is_eager_off_cuda_without_trying_and_yes_or_no_are_as_asked():
    cpu = torch.device("cpu")
    assert compilation.use_compile("auto", cpu) is False
    assert compilation.use_compile("no", cpu) is False and compilation.use_compile("yes", cpu) is True


@pytest.mark.slow
def test_compile_auto_falls_back_to_eager_with_one_line_where_compilation_fails(tmp_path, text_file, no_compiler,  # noqa: F811
                                                                               monkeypatch, capsys):
    monkeypatch.setattr(compilation, "COMPILED_BY_DEFAULT", ("cuda", "cpu"))  # this CPU stands for a GPU node
    code, out = train(tmp_path, text_file, "--max-iters", "2", "--eval-interval", "1", "--compile", "auto")
    assert code == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("--compile auto")]
    assert len(said) == 1 and "torch.compile does not work on this node (" in said[0]
    assert "InvalidCxxCompiler" in said[0] and said[0].endswith("training eager instead")
    record = json.loads((out / "run.json").read_text())
    assert record["compiled"] is False and record["status"] == "completed"
