"""Flask CLI commands: `flask --app wsgi seed-demo`, `flask --app wsgi create-admin`."""
from __future__ import annotations

import click
from flask import Flask, current_app

from ..extensions import db


def register(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Demo logins, the demo DJ's library and events (idempotent; never in production)."""
        if not current_app.config["DEMO_DATA_ALLOWED"]:
            raise click.ClickException("Demo data is never created in production.")
        from ..services.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo

        added = seed_demo()
        if any(added.values()):
            click.echo("Demo data added: " + ", ".join(f"{n} {k}" for k, n in added.items()))
        else:
            click.echo("Demo data already present; nothing changed.")
        click.echo("Demo logins (password %s): %s" % (DEMO_PASSWORD, ", ".join(DEMO_LOGINS.values())))

    @app.cli.command("create-admin")
    @click.option("--email", required=True)
    @click.password_option()
    def create_admin_command(email: str, password: str) -> None:
        """Create an admin account (the way to get the first admin in production)."""
        from ..services.accounts import MIN_PASSWORD_LENGTH, create_user
        from ..services.errors import DomainError

        if len(password) < MIN_PASSWORD_LENGTH:
            raise click.ClickException(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
        try:
            create_user(email, password, "admin", "Admin")
        except DomainError as err:
            raise click.ClickException(err.message) from err
        db.session.commit()
        click.echo(f"Admin {email} created.")
