"""What every capability shares: domain errors, after-commit effects, row
locks, idempotency keys, background jobs by dotted path, text folding and
number formatting. Depends on nothing else in `services`."""
from .after_commit import after_commit
from .errors import DomainError, NotFound
from .idempotency import fingerprint, run_once
from .locks import lock_set
from .tasks import enqueue, enqueue_in, enqueue_now, queue
from .text import fold, normalise_email, rands, thousands

__all__ = ["DomainError", "NotFound", "after_commit", "enqueue", "enqueue_in", "enqueue_now", "fingerprint",
           "fold", "lock_set", "normalise_email", "queue", "rands", "run_once", "thousands"]
