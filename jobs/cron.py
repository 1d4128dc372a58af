"""The `cron` process: `python -m jobs.cron` enqueues the periodic jobs of
jobs/schedule.py (RQ's cron scheduler) and outlives Redis restarts.

RQ's own `rq cron` exits at the first Redis error, and under `make run`
(honcho) one process exiting stops them all. Here a Redis error is logged and
retried (every RECONNECT_MAX_SECONDS at most); once Redis answers again the
scheduler registers itself again at its next heartbeat (every HEARTBEAT_SECONDS;
the heartbeat re-creates what Redis lost)
and enqueues whatever fell due while Redis was away, once.

Several nodes may each run a cron process (two app nodes on one Redis): each
due run of a job is claimed in Redis first (`SET NX` on the job's name and
the time it fell due, which every node computes alike from the cron
expression), and only the process that claims it enqueues it. So each
periodic job runs once per period whatever the number of cron processes.
"""
from __future__ import annotations

import logging.config
import os
import time

import redis
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from rq.utils import now

from app.logs import LOGGING

SCHEDULE = "jobs.schedule"
RECONNECT_MAX_SECONDS = 5.0
# It beats at least this often (RQ's sleeps until the next job is due, up to a
# minute), so a Redis that lost its registration learns of it again quickly.
HEARTBEAT_SECONDS = 5.0
# A due run's claim: longer than any clock skew between nodes or delay in a run.
CLAIM_KEY = "bmm:cron:claim:{name}:{due}"
CLAIM_SECONDS = 3600


class SteadyCron(CronScheduler):
    def calculate_sleep_interval(self) -> float:
        return min(super().calculate_sleep_interval(), HEARTBEAT_SECONDS)

    def enqueue_jobs(self) -> list:
        """RQ's, but a due run is enqueued only by the process that claims it
        (the others move on to the job's next time as if they had)."""
        enqueue_time = now()
        due_jobs = []
        for job in self._cron_jobs:
            if not job.should_run():
                continue
            due = job.next_enqueue_time.timestamp() if job.next_enqueue_time else enqueue_time.timestamp()
            claim = CLAIM_KEY.format(name=job.name, due=int(due))
            if self.connection.set(claim, self.name, nx=True, ex=CLAIM_SECONDS):
                job.enqueue(self.connection)
            job.set_enqueue_time(enqueue_time)
            due_jobs.append(job)
        return due_jobs

    def start(self) -> None:
        self.log.info("CronScheduler %s: starting", self.name)
        self._install_signal_handlers()
        registered = False
        wait = 0.5
        try:
            while True:
                try:
                    if not registered:
                        self.register_birth()
                        registered = True
                    if self.enqueue_jobs():
                        self.save()  # the jobs' next times
                    self.heartbeat()
                    wait = 0.5
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    wait = min(wait * 2, RECONNECT_MAX_SECONDS)
                    self.log.error("CronScheduler %s: Redis unreachable (%s); retrying in %.0f s",
                                   self.name, exc, wait)
                    time.sleep(wait)
                    continue
                pause = self.calculate_sleep_interval()
                if pause > 0:
                    time.sleep(pause)
        except (KeyboardInterrupt, StopRequested):
            self.log.info("CronScheduler %s: stop requested", self.name)
        finally:
            try:
                self.register_death()
            except redis.RedisError:
                pass  # Redis is away: the registration expires by itself
            self.log.info("CronScheduler %s: stopped", self.name)


def main() -> None:
    logging.config.dictConfig(LOGGING)
    connection = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    cron = SteadyCron(connection=connection)
    cron.load_config_from_file(SCHEDULE)
    cron.start()


if __name__ == "__main__":
    main()
