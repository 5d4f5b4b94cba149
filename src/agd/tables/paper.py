"""LaTeX generated from the results for paper/main.tex: the figures with their captions, the claims and numbers
tables, the paper's qualitative tables and the peers' section."""

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


def format_value(value: float, unit: str) -> str:
    """A number as the table shows it: percent to one decimal, a learning rate as 1e-4, decades as an integer."""
    if pd.isna(value):
        return "--"
    if unit == "lr":
        return f"{value:.0e}".replace("e-0", "e-").replace("e+0", "e")
    if unit == "decades":
        return f"{value:g}"
    return format_percent(value)


def numbers_tex(numbers: pd.DataFrame) -> str:
    """The paper's reported numbers beside the reproduced ones, as a longtable-free tabular. The difference
    is given where the reproduced run matches the paper's setting; otherwise the last column says what differs."""
    lines = [
        "\\begin{tabular}{p{0.36\\linewidth}rrrp{0.24\\linewidth}}",
        "\\toprule",
        "quantity & reported & reproduced & difference & data \\\\",
        "\\midrule",
    ]
    for row in numbers.to_dict("records"):
        unit = row.get("unit") if isinstance(row.get("unit"), str) else "%"
        difference = "--" if pd.isna(row["difference"]) else f"{row['difference']:+.1f}"
        data = row["dataset"] if isinstance(row["dataset"], str) and row["dataset"] else "--"
        reason = row.get("reason")
        if isinstance(reason, str) and reason:
            data += f" ({reason})"
        lines.append(
            f"{escape(row['quantity'])} & {format_value(row['reported'], unit)} & "
            f"{format_value(row['reproduced'], unit)} & {difference} & {escape(data)} \\\\"
        )
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def claims_tex(claims: pd.DataFrame) -> str:
    """The paper's claims and their verdicts on these runs, as a longtable (it may run over a page)."""
    lines = [
        "{\\small",
        "\\begin{longtable}{p{0.40\\linewidth}p{0.11\\linewidth}p{0.41\\linewidth}}",
        "\\toprule",
        "claim & verdict & measured here \\\\",
        "\\midrule",
        "\\endhead",
    ]
    for row in claims.to_dict("records"):
        measured = row["measured"] if isinstance(row["measured"], str) else ""
        if isinstance(row["reason"], str) and row["reason"]:
            measured = f"{measured} ({row['reason']})" if measured else row["reason"]
        lines.append(f"{escape(row['claim'])} & {escape(row['verdict'])} & {escape(measured)} \\\\")
    lines += ["\\bottomrule", "\\end{longtable}", "}", ""]
    return "\n".join(lines)


def qualitative_table_tex(table: pd.DataFrame, caption: str) -> str:
    """One of the paper's qualitative tables (paper/tables/*.csv): yes/no cells as check and cross marks."""
    marks = {"yes": "$\\checkmark$", "no": "$\\times$"}
    columns = list(table.columns)
    lines = [
        "\\begin{table}[h]\\centering\\footnotesize\\setlength{\\tabcolsep}{4pt}",
        "\\begin{tabular}{" + "l" * len(columns) + "}",
        "\\toprule",
        " & ".join(escape(c) for c in columns) + " \\\\",
        "\\midrule",
    ]
    for row in table.to_dict("records"):
        lines.append(" & ".join(marks.get(str(row[c]), escape(row[c])) for c in columns) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{escape(caption)}}}", "\\end{table}", ""]
    return "\n".join(lines)


def peers_tex(scores: pd.DataFrame, labels: dict[str, str]) -> str:
    """The peers' section: per optimizer its profile score B with its 95% interval, B with the tuning sweep
    counted, and per cell the mean final test accuracy (a GPT cell: test loss) over the evaluation seeds with the
    epochs (iterations) it took to reach the cell's validation target (-- when it did not; blank where the
    optimizer does not train the cell)."""
    if scores.empty:
        return ""
    cells = list(dict.fromkeys(scores["cell"]))
    lines = [
        "\\section*{Beyond the paper: AGD and its peers}",
        "Every optimizer on the evaluation seeds: AGD and the learning-rate-free ones at their authors' settings, "
        "the tuned ones at the rate their study chose on the validation split of a separate seed. "
        "Cells: final test accuracy in percent, mean over the seeds, and in brackets the median epochs to the "
        "cell's target (the tuned Adam's median best validation accuracy); on a GPT cell the final test loss and "
        "the iterations to the validation loss of nanoGPT's tuned AdamW. $B$ is the performance-profile score "
        "over the cells an optimizer trains "
        "(1: fastest on every cell, 0: never within four times the fastest) with its 95\\% bootstrap interval over "
        "the seeds; $B_t$ counts a tuned optimizer's whole tuning study in its time.",
        "",
        "\\begin{center}\\small",
        "\\begin{tabular}{l" + "r" * (len(cells) + 2) + "}",
        "\\toprule",
        "optimizer & $B$ & $B_t$ & " + " & ".join(escape(cell) for cell in cells) + " \\\\",
        "\\midrule",
    ]
    for optimizer, mine in scores.groupby("optimizer", sort=False):
        by_cell = mine.set_index("cell")
        entries = []
        for cell in cells:
            if cell not in by_cell.index:
                entries.append("")
                continue
            row = by_cell.loc[cell]
            epochs = row["epochs_to_target"]
            reached = "--" if pd.isna(epochs) or epochs == float("inf") else f"{int(epochs)}"
            if row.get("metric") == "val_loss":
                entries.append(f"{row['final_test_loss_mean']:.3f} ({reached})")
            else:
                entries.append(f"{format_percent(100 * row['final_test_acc_mean'])} ({reached})")
        first = mine.iloc[0]
        b = f"{first['B']:.2f} [{first['B_low']:.2f}, {first['B_high']:.2f}]"
        lines.append(f"{escape(labels.get(optimizer, optimizer))} & {b} & {first['B_tuning_inclusive']:.2f} & "
                     + " & ".join(entries) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", "\\end{center}", ""]
    return "\n".join(lines)
