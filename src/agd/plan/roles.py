"""What each panel of the paper's figures is: its role, declared once per panel in config.yaml (`role: grid`).

The claims (paper/claims.csv), the reported numbers (paper/reported_numbers.csv), the figures and the init check
find a panel by its role, never by the name config.yaml gives it: renaming a panel changes nothing but its
name. A panel without a role is drawn where its figure draws extra panels, and no claim reads it.
"""

from collections.abc import Mapping

from agd.plan.errors import ConfigError

# Per figure, each role and what the panel that plays it is.
ROLES: dict[str, dict[str, str]] = {
    "showcase": {
        "default_rates": "a deep FCN trained by AGD, and by Adam and SGD at their default learning rates",
        "lr_sweep": "ResNet-18 under AGD and over a learning-rate sweep of Adam and SGD",
        "imagenet": "ResNet-50 on ImageNet, AGD against SGD",
    },
    "fig1": {
        "fcn": "the FCN, AGD against tuned Adam",
        "resnet18": "ResNet-18, AGD against tuned Adam",
        "vgg16": "VGG-16, AGD against tuned Adam",
        "imagenet": "ResNet-50 on ImageNet, AGD against SGD",
    },
    "fig2": {"fcn": "the depth-8 FCN, AGD against Adam and SGD tuned on a grid"},
    "fig3": {"grid": "AGD on the FCN depth x width grid"},
    "fig4": {"batch_sizes": "AGD on a 4-layer FCN at several batch sizes"},
}
COLUMN = "panel_role"  # the membership's and the figure tables' column: the role of the row's panel (empty: none)


def roles_of(figure: str) -> tuple[str, ...]:
    return tuple(ROLES.get(figure, {}))


def check(config: Mapping) -> None:
    """A ConfigError naming the panel whose role its figure does not have, or the two panels given one role."""
    for preset_name, preset in config.get("presets", {}).items():
        for figure, spec in preset.get("figures", {}).items():
            check_figure(figure, spec["panels"], f"presets.{preset_name}.figures.{figure}")


def check_figure(figure: str, panels: Mapping[str, Mapping], where: str) -> None:
    holders: dict[str, str] = {}
    for name, panel in panels.items():
        role = panel.get("role")
        if role is None:
            continue
        if role not in ROLES.get(figure, {}):
            known = ", ".join(roles_of(figure)) or "none"
            raise ConfigError(f"config.yaml: {where}.panels.{name}.role: {role!r} is not a role of {figure} "
                              f"(its roles: {known})")
        if role in holders:
            raise ConfigError(f"config.yaml: {where}: panels {holders[role]} and {name} both have role {role}; "
                              "give a role to one panel only")
        holders[role] = name
