"""One plotting module per figure; each draws its figure's aggregated CSV, as aggregation marked its rows."""
