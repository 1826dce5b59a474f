"""Where every command module is attached to the app (one line each)."""

import typer


def register(app: typer.Typer) -> None:
    from nerbench.cli import (
        datasets_cmd,
        eval_cmd,
        ingest_cmd,
        models_cmd,
        results_cmd,
        score_cmd,
        site_cmd,
        submissions_cmd,
        train_cmd,
    )

    app.add_typer(datasets_cmd.app, name="datasets")
    app.add_typer(models_cmd.app, name="models")
    app.command("score")(score_cmd.score)
    app.command("compare")(score_cmd.compare)
    app.command("train")(train_cmd.train)
    app.command("eval")(eval_cmd.eval_model)
    app.command("results")(results_cmd.results)
    app.command("submit")(submissions_cmd.submit)
    app.command("validate")(submissions_cmd.validate)
    app.command("ingest")(ingest_cmd.ingest)
    app.add_typer(site_cmd.app, name="site")
