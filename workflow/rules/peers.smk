# Beyond the paper: AGD against the learning-rate-free optimizers of today and Muon (agd.plan.peers). The tuned
# baselines' evaluation jobs are bundles of the train rule; here the peers' tables, which the figure rule draws.


rule aggregate_peers:
    input:
        metrics=peers_inputs,
        code=module_sources("agd.tables.peers"),
    output:
        rows="results/peers.csv",
        scores=report("results/peers_scores.csv", category="Results", labels={"table": "peers' scores"}),
        profiles="results/peers_profiles.csv",
        sensitivity="results/sensitivity.csv",
    log:
        "logs/results/peers.log",
    params:
        members=PEER_MEMBERS.to_dict("records"),
        evaluations=list(EVALUATIONS.values()),
        runs_dir=RUNS_DIR,
        bundles_dir=BUNDLES_DIR,
    localrule: True
    conda:
        CONDA_ENV
    script:
        "../scripts/aggregate_peers.py"
