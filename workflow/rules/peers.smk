# Beyond the paper: AGD against the learning-rate-free optimizers of today and Muon (agd.plan.peers). Every run is
# trained by the train rule; here the tuning stage, which decides a tuned optimizer's rate on the validation split
# one round at a time (a checkpoint: its decision names the jobs that exist next), and the peers' tables, which the
# figure rule draws.


checkpoint tune:
    input:
        unpack(tuning_round_inputs),
        code=module_sources("agd.tables.tuning"),
    output:
        "results/tuning/{study}/round{round}.json",
    log:
        "logs/results/tuning/{study}/round{round}.log",
    wildcard_constraints:
        round=r"\d+",
    params:
        study=lambda wildcards: STUDIES[wildcards.study],
        peers=PRESET.get("peers"),
        runs_dir=lambda wildcards: study_runs_dir(STUDIES[wildcards.study]),
        partial=config["partial"],
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/tune.py"


rule aggregate_peers:
    input:
        unpack(peers_inputs),
        code=module_sources("agd.tables.peers"),
    output:
        rows="results/peers.csv",
        scores=report("results/peers_scores.csv", category="Results", labels={"table": "peers' scores"}),
        profiles="results/peers_profiles.csv",
        tuning=report("results/peers_tuning.csv", category="Results", labels={"table": "peers' tuning"}),
        init="results/peers_init.csv",
        sensitivity="results/sensitivity.csv",
    log:
        "logs/results/peers.log",
    params:
        members=PEER_MEMBERS.to_dict("records") + PEER_LM_MEMBERS.to_dict("records"),
        preset=PRESET,
        smoke=SMOKE,
        runs_dir=RUNS_DIR,
        lm_runs_dir=LM_RUNS_DIR,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate_peers.py"
