"""deliver: send one delivery to its destination; fail (so Pub/Sub retries) when transient."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.bootstrap import get_services
from shared.domain.pipeline import DeliveryMessage
from shared.http.pubsub import PushedMessage, handle_push


def _deliver(message: PushedMessage) -> None:
    get_services().deliverer.deliver(DeliveryMessage.from_json(message.data))


@functions_framework.cloud_event
def deliver(cloud_event: CloudEvent) -> None:
    handle_push(cloud_event, _deliver)
