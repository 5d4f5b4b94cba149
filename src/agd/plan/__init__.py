"""Planning, torch-free: config.yaml checked (config) and expanded into run specs (specs, grid, lm_grid, table),
what the workflow asks of each run (workflow) and its training jobs (training_jobs), which finished jobs lost runs
since (stale, by what an ended run leaves: agd.records), and what a cluster is asked for (cluster)."""
