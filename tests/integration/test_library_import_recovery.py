"""Imports whose worker died: the heartbeat, reconciliation running them again
(without duplicating a track) or giving up with a sentence the DJ understands,
and a real worker SIGKILLed in the middle of an import."""
import threading
import time
from datetime import timedelta

import pytest
import redis as redis_lib
import time_machine
from rq import Queue
from rq.job import Job
from sqlalchemy import func, select, update

from app.extensions import db, redis_store
from app.models import LibraryImport, Track, utcnow
from app.services.library import imports
from app.services.library.imports import (
    GAVE_UP_MESSAGE,
    HEARTBEAT_TTL_SECONDS,
    IMPORT_RETRIES,
    reconcile_imports,
    run_queued_import,
)
from jobs.imports import run_library_import
from tests.library_support import make_dj, track_count


@pytest.fixture
def dj(app, create_user):
    return make_dj(app, create_user)


def big_csv(n: int, *, prefix: str = "Song") -> bytes:
    lines = ["title,artist,genre,bpm,duration"] + [
        f"{prefix} number {i},Artist {i % 97},house,{100 + i % 40},{180 + i % 120}" for i in range(n)]
    return ("\n".join(lines) + "\n").encode()


def the_import(dj_id: int) -> LibraryImport:
    db.session.expire_all()
    return db.session.scalar(select(LibraryImport).where(LibraryImport.dj_id == dj_id))


def distinct_keys(dj_id: int) -> int:
    return db.session.scalar(select(func.count()).select_from(
        select(Track.artist_key, Track.title_key).where(Track.dj_id == dj_id).distinct().subquery()))


def later(seconds: float):
    """The test process's clock (the reconciler's) moved on; workers keep real time."""
    return time_machine.travel(utcnow() + timedelta(seconds=seconds), tick=True)


def status_html(dj, public_id: str) -> str:
    return dj.client.get(f"/dj/library/imports/{public_id}", headers={"HX-Request": "true"}).get_data(as_text=True)


def test_reconcile_leaves_fresh_and_waiting_imports_alone_and_requeues_one_redis_lost(app, dj):
    """A queued import whose job is waiting in RQ is alive; once Redis has lost
    the job (a restart without persistence) the import gets a new one."""
    assert dj.upload("big.csv", big_csv(2500)).status_code == 303
    with app.app_context():
        record = the_import(dj.dj_id)
        assert (record.status, record.attempts, record.job_id) == ("queued", 1, f"library-import-{record.public_id}-1")
        queue = Queue("imports", connection=redis_store.client)
        assert queue.job_ids == [record.job_id]
        assert reconcile_imports() == {"checked": 0, "requeued": 0, "failed": 0}  # not stale yet
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports() == {"checked": 1, "requeued": 0, "failed": 0}  # its job is waiting

        queue.empty()  # Redis lost the queue and the job
        assert not Job.exists(record.job_id, connection=redis_store.client)
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports() == {"checked": 1, "requeued": 1, "failed": 0}
        record = the_import(dj.dj_id)
        assert (record.status, record.attempts, record.job_id) == ("queued", 2, f"library-import-{record.public_id}-2")
        assert queue.job_ids == [record.job_id]
        assert reconcile_imports()["checked"] == 0  # requeued just now: fresh again
        assert run_library_import(record.id) == "done"
        assert track_count(dj.dj_id) == 2500
        record = the_import(dj.dj_id)
        assert (record.status, record.added, record.payload, record.job_id) == ("done", 2500, None, None)


def test_a_running_import_with_a_heartbeat_is_alive_and_one_without_is_run_again(app, dj):
    assert dj.upload("big.csv", big_csv(2500)).status_code == 303
    with app.app_context():
        record = the_import(dj.dj_id)
        Queue("imports", connection=redis_store.client).empty()
        # What a worker leaves when it dies mid-import: running, its file kept, nothing merged.
        db.session.execute(update(LibraryImport).where(LibraryImport.id == record.id).values(status="running"))
        db.session.commit()
        alive = f"bmm:library:import:{record.public_id}:alive"
        redis_store.client.set(alive, "now", ex=HEARTBEAT_TTL_SECONDS)
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports() == {"checked": 1, "requeued": 0, "failed": 0}
        redis_store.client.delete(alive)  # its worker stopped renewing it: expired
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports() == {"checked": 1, "requeued": 1, "failed": 0}
        assert the_import(dj.dj_id).status == "queued"
        public_id = record.public_id
    assert "The importer stopped before it finished; starting again" in status_html(dj, public_id)


def test_after_its_retries_an_import_is_marked_failed_with_a_sentence_for_the_dj(app, dj):
    assert dj.upload("big.csv", big_csv(2500)).status_code == 303
    with app.app_context():
        record = the_import(dj.dj_id)
        Queue("imports", connection=redis_store.client).empty()
        db.session.execute(update(LibraryImport).where(LibraryImport.id == record.id)
                           .values(status="running", attempts=IMPORT_RETRIES + 1))
        db.session.commit()
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports() == {"checked": 1, "requeued": 0, "failed": 1}
        record = the_import(dj.dj_id)
        assert (record.status, record.payload, record.job_id) == ("failed", None, None)
        assert record.finished_at is not None
        assert run_library_import(record.id) == "nothing to do"  # a late job changes nothing
        assert track_count(dj.dj_id) == 0
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports()["checked"] == 0
        public_id = record.public_id
    sentence = GAVE_UP_MESSAGE.format(retries=IMPORT_RETRIES)
    assert sentence.startswith("The import stopped before it finished; we tried again 3 times. Upload the file again")
    page = dj.client.get("/dj/library/").get_data(as_text=True)
    assert "“big.csv” was not imported." in page and sentence in page and "Your library is as it was." in page
    html = status_html(dj, public_id)
    assert sentence in html and "hx-trigger" not in html


def test_a_crash_inside_the_job_puts_the_import_back_for_reconciliation(app, dj, monkeypatch):
    """An unexpected error (here a fault injected into the merge) rolls the merge
    back and leaves the import queued, with its file, for reconciliation."""
    assert dj.upload("big.csv", big_csv(2500)).status_code == 303

    def crash(*args, **kwargs):
        raise RuntimeError("injected fault")

    with app.app_context():
        record = the_import(dj.dj_id)
        Queue("imports", connection=redis_store.client).empty()
        with monkeypatch.context() as patch:
            patch.setattr(imports, "merge_tracks", crash)
            with pytest.raises(RuntimeError):
                run_queued_import(record.id)
        record = the_import(dj.dj_id)
        assert record.status == "queued" and record.payload is not None and track_count(dj.dj_id) == 0
        assert not redis_store.client.exists(f"bmm:library:import:{record.public_id}:alive")
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports()["requeued"] == 1
        assert run_library_import(record.id) == "done" and track_count(dj.dj_id) == 2500


def test_two_runs_of_one_import_at_once_merge_once_and_keep_the_report(app, dj):
    """Reconciliation may take a live import for dead (its heartbeat lost with
    Redis): the second run waits for the library lock, sees the import done
    and changes nothing, so tracks are not duplicated and the report stands."""
    assert dj.upload("big.csv", big_csv(2500)).status_code == 303
    with app.app_context():
        import_id = the_import(dj.dj_id).id
    barrier, outcomes = threading.Barrier(2), []

    def run():
        with app.app_context():
            barrier.wait()
            outcomes.append(run_queued_import(import_id))
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=50)
    assert sorted(outcomes) == ["done", "nothing to do"]
    with app.app_context():
        record = the_import(dj.dj_id)
        assert (record.status, record.added, record.unchanged) == ("done", 2500, 0)
        assert track_count(dj.dj_id) == distinct_keys(dj.dj_id) == 2500


def test_the_heartbeat_is_renewed_by_its_own_thread_and_removed_at_the_end(app_ctx, monkeypatch):
    monkeypatch.setattr(imports, "HEARTBEAT_EVERY_SECONDS", 0.02)
    client = redis_store.client
    key = "bmm:library:import:hb-test:alive"
    with imports._Heartbeat("hb-test"):
        first = client.get(key)
        assert first and 0 < client.ttl(key) <= HEARTBEAT_TTL_SECONDS
        deadline = time.monotonic() + 5
        while client.get(key) == first:  # this thread is busy; the heartbeat's renews the key
            assert time.monotonic() < deadline, "the heartbeat was not renewed"
    assert not client.exists(key)


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


@pytest.mark.timeout(120)
def test_a_worker_killed_mid_import_is_noticed_and_the_import_completes(app, dj, rq_worker):
    """The issue's case: a real worker SIGKILLed in the middle of a 20 000-track
    import. The merge is rolled back with it, the heartbeat stops being renewed,
    reconciliation gives the import a new job and a new worker completes it."""
    total = 20_000
    assert dj.upload("big.csv", big_csv(total)).status_code == 303
    with app.app_context():
        record = the_import(dj.dj_id)
        import_id, public_id = record.id, record.public_id
        first_job = record.job_id

        def mid_import():
            done = imports.read_progress(public_id)
            return done if done and 0 < done[0] < total else None

        done, _ = wait_for(mid_import, 60, "the worker to be part-way through the import")
    rq_worker.kill()
    killed_at = time.monotonic()

    html = status_html(dj, public_id)
    assert f"of {total:,} tracks".replace(",", " ") in html and "<progress" in html  # what the DJ saw, stuck
    with app.app_context():
        record = the_import(dj.dj_id)
        assert record.status == "running" and record.payload is not None
        assert track_count(dj.dj_id) == 0  # the worker's transaction died with it
        alive = f"bmm:library:import:{public_id}:alive"
        assert 0 < redis_store.client.ttl(alive) <= HEARTBEAT_TTL_SECONDS  # it expires by itself
        assert reconcile_imports()["requeued"] == 0  # too soon to tell
        redis_store.client.delete(alive)  # ...as it does HEARTBEAT_TTL_SECONDS after the kill
        with later(HEARTBEAT_TTL_SECONDS + 1):
            assert reconcile_imports() == {"checked": 1, "requeued": 1, "failed": 0}
        record = the_import(dj.dj_id)
        assert record.status == "queued" and record.attempts == 2 and record.job_id != first_job

    rq_worker.start_fresh()  # the process supervisor's restart
    with app.app_context():
        wait_for(lambda: the_import(dj.dj_id).status == "done", 90, "the import to finish on the new worker")
        recovered_in = time.monotonic() - killed_at
        record = the_import(dj.dj_id)
        assert (record.added, record.updated, record.unchanged, record.payload) == (total, 0, 0, None)
        assert track_count(dj.dj_id) == distinct_keys(dj.dj_id) == total
        wait_for(lambda: not redis_store.client.exists(f"bmm:library:import:{public_id}:alive"), 10,
                 "the heartbeat to be removed")  # just after the commit
    html = status_html(dj, public_id)
    assert "<progress" not in html and f">{total:,}<".replace(",", " ") in html
    print(f"\nkilled at {done} of {total}; completed {recovered_in:.1f} s after the kill "
          f"(+ at most {HEARTBEAT_TTL_SECONDS} s heartbeat expiry and 60 s to the next cron run)")
    rq_worker.wait_until_idle()


def test_the_redis_client_is_not_needed_for_an_import_merged_in_the_request(app, dj):
    """Small files never touch the heartbeat or reconciliation."""
    assert dj.upload("small.csv", big_csv(10)).status_code == 303
    with app.app_context():
        record = the_import(dj.dj_id)
        assert (record.status, record.job_id, record.attempts) == ("done", None, 0)
        keys = [k for k in redis_lib.Redis.from_url(app.config["REDIS_URL"]).scan_iter("bmm:library:import:*")]
        assert keys == []
