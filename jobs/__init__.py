"""RQ jobs: thin, importable functions that take ids, push their own app
context (jobs.context.with_app_context), call one service and return what it
did. Each is safe to run twice (RQ delivers at least once).

Services enqueue them by dotted path ("jobs.payments.refund_payment") through
app/services/common/tasks.py, after the commit that makes their input
visible; the periodic ones are registered in jobs/schedule.py.
"""
