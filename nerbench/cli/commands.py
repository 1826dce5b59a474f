"""Where every command module is attached to the app (one line each)."""

import typer


def register(app: typer.Typer) -> None:
    from nerbench.cli import datasets_cmd, score_cmd

    app.add_typer(datasets_cmd.app, name="datasets")
    app.command("score")(score_cmd.score)
    app.command("compare")(score_cmd.compare)
    from nerbench.cli import results_cmd
    app.command("results")(results_cmd.results)
    from nerbench.cli import models_cmd, train_cmd
    app.add_typer(models_cmd.app, name="models")
    app.command("train")(train_cmd.train)
