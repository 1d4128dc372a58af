"""One linear Alembic history that matches the models and goes both ways."""
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import inspect, select, text

from app.extensions import db


def _tables():
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def test_history_is_linear(app_ctx):
    script = ScriptDirectory.from_config(app_ctx.extensions["migrate"].migrate.get_config())
    assert len(script.get_heads()) == 1
    for rev in script.walk_revisions():
        assert not isinstance(rev.down_revision, tuple), f"merge revision {rev.revision}"


def test_upgrade_downgrade_upgrade(app_ctx):
    assert _tables() == set(db.metadata.tables)
    downgrade(revision="base")
    assert _tables() == set()
    upgrade()
    assert _tables() == set(db.metadata.tables)


def test_migrations_match_the_models(app_ctx):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    # SQLite cannot report some details (e.g. CHECK constraints) either way;
    # anything reported is a real difference between models and migrations.
    assert diff == []


def test_payment_history_and_audit_log_are_append_only(app_ctx, night):
    from app.models import AuditLog

    db.session.add(AuditLog(action="test", target_type="user", target_id="1"))
    db.session.commit()
    statements = [f"{verb} {table}" for table in ("payment_transitions", "audit_log")
                  for verb in ("UPDATE", "DELETE FROM")]
    # A payment with a history cannot go either: its history would go with it.
    from app.models import DJSet, GuestDevice, Payment, Track
    from app.services.payments.ledger import record_transition

    dj_set = db.session.scalar(select(DJSet).limit(1))
    device = GuestDevice(public_id="append-only-test")
    db.session.add(device)
    db.session.flush()
    lone = Payment(purpose="request", amount_cents=2000, provider="sandbox", set_id=dj_set.id, device_id=device.id,
                   track_id=db.session.scalar(select(Track.id).limit(1)))
    record_transition(lone, "PENDING", "test")
    db.session.commit()
    statements.append(f"DELETE FROM payments WHERE id = {lone.id}")
    for statement in statements:
        sql = statement + (" SET created_at = created_at" if statement.startswith("UPDATE") else "")
        try:
            with db.engine.begin() as conn:
                conn.execute(text(sql))
        except Exception as exc:  # noqa: BLE001 - the driver's error type differs per backend
            assert "append-only" in str(exc), statement
        else:
            raise AssertionError(f"{statement} was accepted")
    assert db.session.get(Payment, lone.id).history


def test_the_refund_retry_column_is_backfilled_from_the_history(app_ctx, monkeypatch):
    """Failed refunds already in the database get the due time the ledger would have given them."""
    from app.models import DJSet, GuestDevice, Payment, Track
    from app.services.demo import seed_demo
    from app.services.payments.ledger import REFUND_ATTEMPTS, record_transition

    monkeypatch.setitem(app_ctx.config, "REFUND_RETRY_SECONDS", 10.0)
    seed_demo()
    dj_set = db.session.scalar(select(DJSet).where(DJSet.status == "live"))
    track_id = db.session.scalar(select(Track.id).limit(1))
    expected = {}
    for n, moves in enumerate([
        ["COMPLETED", "REFUND_PENDING", "REFUND_FAILED"],  # due 10 s after its failure
        ["COMPLETED"] + ["REFUND_PENDING", "REFUND_FAILED"] * 3,  # 40 s after its last failure
        ["COMPLETED"] + ["REFUND_PENDING", "REFUND_FAILED"] * REFUND_ATTEMPTS,  # an admin's turn
        ["COMPLETED", "REFUND_PENDING", "REFUND_FAILED", "REFUND_PENDING", "REFUNDED"],
    ]):
        device = GuestDevice(public_id=f"backfill-{n}")
        db.session.add(device)
        db.session.flush()
        payment = Payment(purpose="request", amount_cents=2000, provider="sandbox", set_id=dj_set.id,
                          track_id=track_id, device_id=device.id)
        for state in ["PENDING", *moves]:
            record_transition(payment, state, "test")
        db.session.commit()
        expected[payment.id] = payment.refund_retry_at
    assert [at is not None for at in expected.values()] == [True, True, False, False]

    db.session.remove()
    downgrade(revision="c4e1a9b2d7f3")
    try:
        assert "refund_retry_at" not in {c["name"] for c in inspect(db.engine).get_columns("payments")}
    finally:
        upgrade()
    db.session.remove()
    backfilled = dict(db.session.execute(select(Payment.id, Payment.refund_retry_at)).all())
    assert {payment_id: backfilled[payment_id] for payment_id in expected} == expected
