"""The control plane's store: SQLAlchemy 2 async models, engine, migrations, secrets at rest."""
