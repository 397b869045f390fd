"""delivery: delivery.requested -> e-mail/SMS -> delivery.completed | dead letter."""

from fapiao.services.deliver import deliver
from schemas.events import DeliveryRequested
from workers.runtime import Runtime


def register(app, settings, deps) -> Runtime:
    rt = Runtime(app, settings, "delivery.requested")
    rt.agent(
        "delivery",
        DeliveryRequested.model_validate_json,
        lambda ev: deliver(deps.sessions, deps.mailer, deps.sms, ev, deps.delivery_config),
    )
    return rt
