"""config.yaml checked against its schema before anything is planned, and the schema's defaults filled in.

The names a panel may use (architectures, datasets, losses, texts, optimizers and what each optimizer
takes) are read from the catalogs and the optimizer registry, not written in the schema a second time."""

from collections.abc import Iterator, Mapping
from pathlib import Path

import jsonschema
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from agd.data.catalog import DATASETS, TEXTS
from agd.models.catalog import ARCHS, LOSSES
from agd.optim import registry
from agd.plan import roles
from agd.plan.checks import SLOTS_PER_GPU
from agd.plan.errors import ConfigError
from agd.plan.grid import FIGURES
from agd.plan.tuning import TUNING_RULES, VALIDATION_RULES

SCHEMA = Path(__file__).resolve().parents[3] / "workflow" / "schemas" / "config.schema.yaml"
# Where each job kind's panels name their optimizers (the peers block: those of either job, each with a rate grid
# if tuned), and the definition of one LM optimizer setting.
PANEL_DEFS = {registry.IMAGE: ("panel",), registry.LM: ("transformer_panel",)}
LM_SETTINGS_DEF = "lm_optimizer_settings"


def optimizer_schema(entry: registry.Optimizer, job: str, defs: Mapping) -> dict:
    """How a panel configures `entry`: nothing (null), a grid of learning rates (image runs), or its own
    settings (a language-model optimizer that takes a rate)."""
    if not entry.tuned:
        return {"type": "null"}
    if job == registry.IMAGE:
        return {"$ref": "#/$defs/lr_grid"}
    return {"type": "object", "additionalProperties": False, "required": ["lr"],
            "properties": {name: defs[LM_SETTINGS_DEF][name] for name in entry.settings}}


def schema(path: Path = SCHEMA) -> dict:
    """The config schema with the catalogs' names as enums, and each panel's `optimizers` made of the
    registry's optimizers for its job."""
    document = yaml.safe_load(Path(path).read_text())
    defs = document["$defs"]
    for panel, name, choices in (("panel", "arch", ARCHS), ("panel", "dataset", DATASETS), ("panel", "loss", LOSSES),
                                 ("peers_image_cell", "arch", ARCHS), ("peers_image_cell", "dataset", DATASETS),
                                 ("peers_image_cell", "loss", LOSSES), ("peers_gpt_cell", "text", TEXTS),
                                 ("transformer_panel", "text", TEXTS)):
        defs[panel]["properties"][name]["enum"] = list(choices)
    # The paper's figures keep the paper's protocol (rates chosen on the test split); the peers block chooses on
    # its validation split only.
    document["properties"]["tuning_rule"]["enum"] = [rule for rule in TUNING_RULES if rule not in VALIDATION_RULES]
    defs["peers"]["properties"]["tuning"]["properties"]["rule"]["enum"] = list(VALIDATION_RULES)
    defs["preset"]["properties"]["jobs_per_gpu"]["maximum"] = SLOTS_PER_GPU.maximum
    defs["preset"]["properties"]["figures"]["properties"] = {name: {"$ref": "#/$defs/figure"} for name in FIGURES}
    for job, panels in PANEL_DEFS.items():
        for panel in panels:
            defs[panel]["properties"]["optimizers"] = {
                "type": "object", "minProperties": 1, "additionalProperties": False,
                "properties": {entry.name: optimizer_schema(entry, job, defs) for entry in registry.entries(job)},
            }
    defs["peers"]["properties"]["optimizers"] = {
        "type": "object", "minProperties": 1, "additionalProperties": False,
        "properties": {entry.name: optimizer_schema(entry, registry.IMAGE, defs) for entry in registry.REGISTRY.values()},
    }
    # A GPT cell fixes settings of the optimizers that train a GPT, each only the settings it takes (its rate is
    # let through here to be refused by name: agd.plan.peers.check_gpt_cell).
    defs["peers_gpt_cell"]["properties"]["settings"] |= {"additionalProperties": False, "properties": {
        entry.name: {"type": ["object", "null"], "additionalProperties": False,
                     "properties": {name: defs[LM_SETTINGS_DEF][name] for name in entry.settings
                                    if name in defs[LM_SETTINGS_DEF]}}
        for entry in registry.entries(registry.LM)}}
    return document


def _is_integer(checker, instance) -> bool:
    """JSON Schema counts 1.0 as an integer; here it is not: a seed or width written 1.0 would name another run
    (seed1.0) than 1, so it is refused for the key that holds it."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _with_defaults(validator_class):
    """A validator that fills in each property's schema default where the config leaves it out, and whose
    integers are integers (see _is_integer)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, subschema) -> Iterator:
        if isinstance(instance, dict):
            for name, prop in props.items():
                if "default" in prop:
                    instance.setdefault(name, prop["default"])
        yield from check_properties(validator, props, instance, subschema)

    checker = validator_class.TYPE_CHECKER.redefine("integer", _is_integer)
    return jsonschema.validators.extend(validator_class, {"properties": properties}, type_checker=checker)


def validate(config: dict, path: Path = SCHEMA) -> None:
    """Raise ConfigError naming the first key that breaks the schema (or a panel role its figure lacks); fill the
    schema's defaults in place."""
    document = schema(path)
    error = best_match(_with_defaults(Draft202012Validator)(document).iter_errors(config))
    if error is not None:
        where = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ConfigError(f"config.yaml: {where}: {error.message}")
    roles.check(config)
