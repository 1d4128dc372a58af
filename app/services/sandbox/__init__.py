"""The Yoco sandbox's own logic (PAYMENT_PROVIDER=sandbox): a faithful fake
of Yoco's Checkout API, its checkouts and refunds (engine), their state in
Redis (store), webhook events and their signed deliveries on Yoco's retry
schedule (webhooks, delivery), with fault injection. The HTTP face (API,
pay page, control page) is the sandbox blueprint (app/sandbox/)."""
from . import engine, store
from .delivery import RETRY_SCHEDULE_SECONDS, deliver_webhook
from .webhooks import webhook_url

__all__ = ["RETRY_SCHEDULE_SECONDS", "deliver_webhook", "engine", "store", "webhook_url"]
