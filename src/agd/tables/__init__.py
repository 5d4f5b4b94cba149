"""From run directories to tables, torch-free: aggregation (aggregate), the rows each panel shows and the tuned
rates (selection), the numbers against the paper (numbers) and the paper's generated LaTeX (paper)."""
