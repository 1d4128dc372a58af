"""Flask CLI commands: `flask --app wsgi seed-demo`, `create-admin`, `sandbox-keys`, `vapid-keys`, `analytics-rebuild`, `jobs …`."""
from __future__ import annotations

import click
from flask import Flask, current_app

from ..config import new_vapid_keys
from ..extensions import db
from ..services import analytics
from ..services.accounts import MIN_PASSWORD_LENGTH, create_user
from ..services.common import tasks
from ..services.common.errors import DomainError
from ..services.demo import DEMO_LOGINS, DEMO_PASSWORD, seed_demo


def register(app: Flask) -> None:
    app.cli.add_command(jobs_group)

    @app.cli.command("seed-demo")
    def seed_demo_command() -> None:
        """Demo logins, the demo DJ's library and events (idempotent; never in production)."""
        if not current_app.config["DEMO_DATA_ALLOWED"]:
            raise click.ClickException("Demo data is never created in production.")
        # `make run` seeds before it starts Redis: the seed rebuilds the demo's
        # analytics itself instead of enqueueing refresh jobs nobody could take.
        with analytics.refreshes_paused():
            added = seed_demo()
        if any(added.values()):
            analytics.rebuild()
            click.echo("Demo data added: " + ", ".join(f"{n} {k}" for k, n in added.items()))
        else:
            click.echo("Demo data already present; nothing changed.")
        click.echo("Demo logins (password %s): %s" % (DEMO_PASSWORD, ", ".join(DEMO_LOGINS.values())))

    @app.cli.command("analytics-rebuild")
    @click.option("--dj", "dj_public_id", default=None, help="Only this DJ (a DJ profile's public id).")
    def analytics_rebuild_command(dj_public_id: str | None) -> None:
        """Compute every analytics rollup again from the raw rows (one DJ's, or everyone's)."""
        try:
            sets = analytics.rebuild_for(dj_public_id)
        except DomainError as error:
            raise click.ClickException(error.message) from error
        click.echo(f"Rebuilt the analytics of {sets} set(s).")

    @app.cli.command("sandbox-keys")
    def sandbox_keys_command() -> None:
        """The sandbox's API key and webhook secret (derived from SECRET_KEY unless set):
        what a client of the sandbox API or a webhook signer of your own needs."""
        if current_app.config["PAYMENT_PROVIDER"] != "sandbox":
            raise click.ClickException("PAYMENT_PROVIDER is not sandbox: there are no sandbox keys.")
        click.echo(f"YOCO_API_BASE={current_app.config['YOCO_API_BASE']}")
        click.echo(f"YOCO_SECRET_KEY={current_app.config['YOCO_SECRET_KEY']}")
        click.echo(f"YOCO_WEBHOOK_SECRET={current_app.config['YOCO_WEBHOOK_SECRET']}")

    @app.cli.command("vapid-keys")
    @click.option("--new", "new", is_flag=True, help="Print a fresh pair (for production's environment).")
    def vapid_keys_command(new: bool) -> None:
        """The Web Push (VAPID) keys in use (development makes them in instance/vapid.json
        on first start), or with --new a fresh pair to put in production's environment."""
        keys = new_vapid_keys() if new else {name: current_app.config[name]
                                             for name in ("VAPID_PRIVATE_KEY", "VAPID_PUBLIC_KEY")}
        if not keys["VAPID_PUBLIC_KEY"]:
            raise click.ClickException("No VAPID keys configured: run `flask vapid-keys --new` and set them.")
        for name, value in keys.items():
            click.echo(f"{name}={value}")
        if not new:
            click.echo(f"VAPID_SUBJECT={current_app.config['VAPID_SUBJECT']}")

    @app.cli.command("create-admin")
    @click.option("--email", required=True)
    @click.password_option()
    def create_admin_command(email: str, password: str) -> None:
        """Create an admin account (the way to get the first admin in production)."""
        if len(password) < MIN_PASSWORD_LENGTH:
            raise click.ClickException(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
        try:
            create_user(email, password, "admin", "Admin")
        except DomainError as err:
            raise click.ClickException(err.message) from err
        db.session.commit()
        click.echo(f"Admin {email} created.")


@click.group("jobs")
def jobs_group() -> None:
    """The job queues and the failed-job registry (the dead letter queue)."""


@jobs_group.command("failed")
def jobs_failed() -> None:
    """List failed jobs: id, function, when, and the last line of the error."""
    for name in tasks.QUEUES:
        queue = tasks.queue(name)
        registry = queue.failed_job_registry
        ids = registry.get_job_ids()
        click.echo(f"{name}: {len(ids)} failed")
        for job in queue.job_class.fetch_many(ids, connection=queue.connection):
            if job is None:
                continue
            error = (job.latest_result().exc_string if job.latest_result() else "") or ""
            last = error.strip().splitlines()[-1] if error.strip() else ""
            click.echo(f"  {job.id}  {job.func_name}{job.args}  {job.ended_at or ''}  {last}")


@jobs_group.command("requeue")
@click.argument("job_ids", nargs=-1)
@click.option("--all", "requeue_all", is_flag=True, help="Requeue every failed job.")
def jobs_requeue(job_ids: tuple[str, ...], requeue_all: bool) -> None:
    """Put failed jobs back on their queue (they are idempotent, so this is safe)."""
    if not job_ids and not requeue_all:
        raise click.UsageError("name job ids, or pass --all")
    count = 0
    for name in tasks.QUEUES:
        registry = tasks.queue(name).failed_job_registry
        for job_id in (registry.get_job_ids() if requeue_all else job_ids):
            if job_id in registry:
                registry.requeue(job_id)
                count += 1
    click.echo(f"requeued {count} job(s)")
