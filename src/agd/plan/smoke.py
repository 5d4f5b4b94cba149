"""The smoke run (`snakemake --config smoke=true`): every run of the chosen preset, ImageNet and OpenWebText panels
included, for two steps on random data of the right shape made on the fly, on the CPU, in the folder smoke/;
then every figure and the paper from those rows. It proves before any GPU hour is spent that no job of the grid
fails on a shape, an argument or a missing file. Its numbers mean nothing.

The runs keep the preset's architectures, widths, depths and batch sizes, except where a CPU's memory cannot
hold one step (`REDUCED_BATCH`) and in a GPT, which takes one sequence per step (a batch shapes no weight; at
nanoGPT's 64 sequences of 256 characters each GPT run of the peers' Shakespeare cell took a minute of a core):
each such change is returned as a note and printed when the workflow plans. The
peers block keeps one evaluation seed of its several: a seed changes no shape, argument or file, and the block's
other seeds would triple its runs (every cell, optimizer, role and study still runs). No run keeps its checkpoint:
hundreds of runs at the preset's sizes would keep tens of gigabytes, and a smoke run is never extended."""

from collections.abc import Mapping

from agd.optim import registry

WORKDIR = "smoke"
LABEL = "smoke run: synthetic data, two steps per run, numbers meaningless"
THREADS = 1
# Image datasets whose batch is cut to fit a CPU step: ImageNet's 1024 images of 224x224 through ResNet-50.
REDUCED_BATCH = {"imagenet": 32}
LM_ITERATIONS = 2
# Texts whose GPT's step would not fit a CPU's memory (GPT-2: 12 x 40 sequences of 1024); the others' would only be
# slow. Either way a GPT of the smoke run takes one sequence per micro-batch and one micro-batch per step.
MEMORY_BOUND_TEXTS = ("openwebtext",)


def apply(config: dict) -> list[str]:
    """Turn the validated config into its smoke run, in place; returns what was reduced, one note each."""
    config["smoke"] = True
    config["keep_checkpoints"] = False
    preset = config["presets"][config["preset"]]
    preset["device"] = "cpu"
    preset["description"] = f"{LABEL.capitalize()}. {preset.get('description', '')}"
    preset["threads"] = THREADS
    for gate in ("imagenet", "openwebtext"):
        config.setdefault(gate, {})["enabled"] = True
    notes = []
    for figure, spec in preset["figures"].items():
        for name, panel in spec["panels"].items():
            notes += _image_panel(panel, f"{figure}/{name}")
    peers = preset.get("peers")
    if peers:
        for name, cell in peers["cells"].items():
            if "text" in cell:
                notes += _lm_panel(cell, f"peers/{name}")
                # A warmup that the cell leaves at its optimizer's default would outlast the two iterations.
                for optimizer in peers["optimizers"]:
                    if "warmup_iters" in registry.get(optimizer).settings:
                        cell.setdefault("settings", {})[optimizer] = dict(cell["settings"].get(optimizer) or {},
                                                                           warmup_iters=1)
            else:
                notes += _image_panel(cell, f"peers/{name}")
        seeds = peers["seeds"]["evaluation"]
        if len(seeds) > 1:
            peers["seeds"]["evaluation"] = seeds[:1]
            notes.append(f"peers: evaluation seeds {seeds} -> {seeds[:1]} (a seed changes no shape or argument)")
    for name, panel in preset.get("transformer", {}).get("panels", {}).items():
        notes += _lm_panel(panel, f"transformer/{name}")
    return notes


def _image_panel(panel: dict, where: str) -> list[str]:
    """One epoch of synthetic data is two steps (agd.data.synthetic)."""
    panel.pop("iterations", None)
    panel["epochs"] = 1
    reduced = REDUCED_BATCH.get(panel["dataset"])
    if reduced is None:
        return []
    sizes = panel["batch_size"]
    if isinstance(sizes, list):
        panel["batch_size"] = [min(size, reduced) for size in sizes]
        changed = sizes != panel["batch_size"]
    else:
        panel["batch_size"] = min(sizes, reduced)
        changed = sizes != panel["batch_size"]
    return [f"{where}: batch size {sizes} -> {panel['batch_size']} to fit a CPU's memory"] if changed else []


def _lm_panel(panel: dict, where: str) -> list[str]:
    panel["max_iters"] = LM_ITERATIONS
    panel["eval_interval"] = 1
    panel["eval_iters"] = 1
    # A transformer panel's optimizers carry their settings; a peers GPT cell fixes them under `settings`.
    for settings in (panel.get("optimizers") or panel.get("settings", {})).values():
        if isinstance(settings, Mapping) and "warmup_iters" in settings:
            settings["warmup_iters"] = 1
    if (panel["batch_size"], panel.get("grad_accum", 1)) == (1, 1):
        return []
    before = f"{panel['batch_size']} x {panel.get('grad_accum', 1)}"
    panel["batch_size"], panel["grad_accum"] = 1, 1
    why = "to fit a CPU's memory" if panel["text"] in MEMORY_BOUND_TEXTS else "to take seconds on a CPU, not a minute"
    return [f"{where}: {before} sequences per step -> 1 x 1 {why}"]
