"""Blending: finished runs -> a new run-like folder, its recipe, a submission and the leaderboard.

    cli.py        python -m kit.blend: checks, writes oof/<blend>/ and submissions/<blend>.csv
    base.py       the estimator machinery: per-fold refits for an honest OOF, one fit on all rows
    blenders.py   mean, rank, weights, hill
    stacking.py   the stacker (logistic regression on logits)
    recipe.py     a fitted blend as data, applied with numpy alone (kit.predict uses it offline)
"""


def main(argv=None):
    from kit.blend.cli import main as cli_main  # lazy: kit.blend.recipe must import without scikit-learn

    return cli_main(argv)
