# Beyond the paper: AGD against the learning-rate-free optimizers of today and Muon (agd.plan.peers): the
# tuned baselines' evaluation jobs, the peers' tables, and the peers, profiles and sensitivity figures.

EVALUATIONS = {job["name"]: job for job in peers.evaluations(PRESET, config["tuning_rule"])}
PEER_MEMBERS = MEMBERS[MEMBERS["figure"].isin([peers.FIGURE, peers.SENSITIVITY])]


def evaluation(wildcards):
    return EVALUATIONS[wildcards.evaluation]


def evaluation_cost(wildcards):
    """What a tuned-evaluation job trains, for its time and memory: a grid run per seed, for the cell's epochs."""
    job = evaluation(wildcards)
    return [dict(RUNS.loc[job["candidates"][0]]) | {"epochs": job["epochs"]}] * len(job["seeds"])


rule train_tuned:
    input:
        lambda wildcards: trained(evaluation(wildcards)["candidates"]),
    output:
        f"{BUNDLES_DIR}/{{evaluation}}.json",
    log:
        f"{BUNDLES_DIR}/{{evaluation}}.log",
    benchmark:
        f"{BUNDLES_DIR}/{{evaluation}}.benchmark.tsv"
    wildcard_constraints:
        evaluation=r"tuned-[^/]+",
    params:
        args=lambda wildcards: pipeline.tuned_command(evaluation(wildcards), PRESET, config),
        devices=lambda wildcards: 1 if USES_CUDA else 0,
        lease=lambda wildcards: lease_flags(evaluation(wildcards)["arch"] == "fcn"),
    threads: PRESET["threads"]
    resources:
        gpu=lambda wildcards: gpu_resource(1, evaluation(wildcards)["arch"] == "fcn"),
        runtime=lambda wildcards, attempt: cluster.bundle_runtime_minutes(evaluation_cost(wildcards), attempt),
        mem_mb=lambda wildcards: cluster.mem_mb(evaluation_cost(wildcards)[0]),
    shell:
        "{PYTHON} -m agd.jobs.launch --gpus {params.devices} {params.lease} --module {BUNDLE_MODULE} -- {params.args}"
        " --manifest {output:q} > {log} 2>&1"


def peers_inputs(wildcards):
    evaluations = [f"{BUNDLES_DIR}/{name}.json" for name in EVALUATIONS]
    if config["partial"]:
        evaluations = [path for path in evaluations if Path(path).exists()]
    return trained(dict.fromkeys(PEER_MEMBERS["run"])) + evaluations


rule aggregate_peers:
    input:
        metrics=peers_inputs,
        code=module_sources("agd.tables.peers"),
    output:
        rows="results/peers.csv",
        scores=report("results/peers_scores.csv", category="Results", labels={"table": "peers' scores"}),
        profiles="results/peers_profiles.csv",
        sensitivity="results/sensitivity.csv",
    params:
        members=PEER_MEMBERS.to_dict("records"),
        evaluations=list(EVALUATIONS.values()),
        runs_dir=RUNS_DIR,
        bundles_dir=BUNDLES_DIR,
    localrule: True
    script:
        "../scripts/aggregate_peers.py"


for figure_name, data in (("peers", "results/peers.csv"), ("profiles", "results/peers_profiles.csv"),
                          ("sensitivity", "results/sensitivity.csv")):

    rule:
        name:
            f"figure_{figure_name}"
        input:
            data=data,
            code=module_sources(f"agd.figures.{figure_name}"),
        output:
            pdf=f"figures/{figure_name}.pdf",
            png=report(f"figures/{figure_name}.png", caption=f"../report/{figure_name}.rst", category="Figures",
                       labels={"figure": figure_name}),
            caption=f"figures/{figure_name}.txt",
        params:
            context={
                "figure": figure_name,
                "preset": PRESET_LABEL,
                "description": PRESET.get("description", ""),
                "notes": [PRESET.get("peers", {}).get("note", "")] if PRESET.get("peers", {}).get("note") else [],
            },
        localrule: True
        script:
            "../scripts/plot_figure.py"
