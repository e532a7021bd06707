"""`python -m cli` is `metalgate`: the embedded stack starts children this way."""

from cli.main import app

app()
