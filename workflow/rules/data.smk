# Datasets that torchvision downloads, fetched once before any training job (on the submitting host).


rule download_data:
    output:
        touch(f"{DATA_DIR}/.{{dataset}}.ready"),
    wildcard_constraints:
        dataset="|".join(pipeline.DOWNLOADABLE),
    log:
        "logs/download_{dataset}.log",
    params:
        python=PYTHON,
        data_dir=lambda wildcards, output: str(Path(output[0]).parent),
    localrule: True
    conda:
        CONDA_ENV
    shell:
        "{params.python} -m agd.jobs.download {wildcards.dataset} --data-dir {params.data_dir:q} > {log} 2>&1"
