"""LaTeX generated from the results for paper/main.tex: the figures with their captions, and the numbers table."""

import re

import pandas as pd

LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape(text: str) -> str:
    return re.sub(r"[\\&%$#_{}~^]", lambda m: LATEX_SPECIAL[m.group()], str(text))


def figures_tex(captions: dict[str, str]) -> str:
    """One figure environment per figure, in order, with its caption file's text."""
    blocks = []
    for name, caption in captions.items():
        title, _, details = caption.partition("\n\n")
        blocks.append(
            "\\begin{figure}[p]\n\\centering\n"
            f"\\includegraphics[width=\\linewidth]{{{name}.pdf}}\n"
            f"\\caption{{{escape(title.strip())} \\emph{{{escape(details.strip())}}}}}\n"
            f"\\label{{fig:{name}}}\n\\end{{figure}}\n"
        )
    return "\n".join(blocks)


def format_percent(value: float) -> str:
    return "--" if pd.isna(value) else f"{value:.1f}"


def numbers_tex(numbers: pd.DataFrame) -> str:
    """The paper's reported numbers beside the reproduced ones, as a longtable-free tabular."""
    lines = [
        "\\begin{tabular}{p{0.44\\linewidth}rrrl}",
        "\\toprule",
        "quantity & reported & reproduced & difference & data \\\\",
        "\\midrule",
    ]
    for row in numbers.to_dict("records"):
        difference = "--" if pd.isna(row["difference"]) else f"{row['difference']:+.1f}"
        lines.append(
            f"{escape(row['quantity'])} & {format_percent(row['reported'])} & {format_percent(row['reproduced'])}"
            f" & {difference} & {escape(row['dataset'] or '--')} \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)
