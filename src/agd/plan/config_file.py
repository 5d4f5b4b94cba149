"""config.yaml read strictly, before Snakemake reads it: a YAML syntax error, or bytes that are not UTF-8, are
named by line and column, and a key given twice in one mapping (which YAML loaders resolve silently by keeping
the last, dropping a whole figure or panel) is an error naming the key and both lines. Merge keys
(`<<: *anchor`) are YAML's own way to share settings: the keys a mapping gives itself override the merged ones,
as YAML specifies, and only a key the mapping itself gives twice is an error."""

from pathlib import Path

import yaml

from agd.plan.errors import ConfigError


class StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys."""


MERGE_TAG = "tag:yaml.org,2002:merge"


def _mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == MERGE_TAG:
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"the key {key!r} is given twice (first on line {seen[key] + 1}); YAML would keep only "
                            "the last: rename or merge one of them", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load(path: Path) -> dict:
    """The file's contents; ConfigError with the file, line and column of a syntax error or a duplicate key."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise ConfigError(f"{path}, line {line}, column {column}: byte {data[e.start]:#04x} is not UTF-8 text; "
                          "save the file as UTF-8") from None
    try:
        return yaml.load(text, Loader=StrictLoader) or {}
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: {e.problem or e.context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: {e}") from None


def check(paths) -> None:
    """Read each config file that exists strictly (see `load`)."""
    for path in paths:
        if Path(path).exists():
            load(path)
