"""One plotting module per paper figure; each reads only its figure's CSV and the tuned learning rates."""

FIGURES = ("showcase", "fig1", "fig2", "fig3", "fig4")
