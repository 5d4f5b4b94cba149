# Datasets that torchvision downloads, fetched once before any training job (on the submitting host).


rule download_data:
    output:
        touch(f"{DATA_DIR}/.{{dataset}}.ready"),
    wildcard_constraints:
        dataset="|".join(pipeline.DOWNLOADABLE),
    log:
        f"logs/download_{{dataset}}.log",
    localrule: True
    shell:
        "{PYTHON} -m agd.jobs.download {wildcards.dataset} --data-dir {DATA_DIR:q} > {log} 2>&1"
