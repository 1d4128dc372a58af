"""The domain, one package per capability; plain functions that own their
unit of work, read no request globals, render nothing, and never import an
area (blueprint) or `jobs/` (jobs are enqueued by dotted path). Each
package's `__init__` names its public functions. Capabilities depend
downward only (the import contract in .importlinter holds it):

    demo                             the demo world for `make run`
    requests | admin | sandbox       song requests; the admin console's reads; the fake Yoco
    payments                         ledger, confirmation, refunds, reconciliation, Yoco client
    events                           events and sets, ownership, QR links
    live | library | accounts        live queue; a DJ's library and search; accounts, devices
    common                           errors, after-commit, locks, idempotency, jobs, text

docs/architecture.md maps every capability to its files.
"""
