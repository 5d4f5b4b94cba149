"""The training jobs and what runs them: the image and language-model jobs (train, train_lm) around one driver,
their command lines, run directories, checkpoints and metrics, data-parallel ranks, GPU leases and launch,
and the one-off data preparation (download, prepare_text)."""
