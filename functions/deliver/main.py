"""deliver: send a message's deliveries to their destination; fail (so Pub/Sub retries) when
any is transient."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.bootstrap import get_services
from shared.domain.pipeline import decode_deliveries, message_batch_id
from shared.http.pubsub import PushedMessage, handle_push


def _deliver(message: PushedMessage) -> None:
    batch_id = message_batch_id(message.data, message.attributes)
    get_services().deliverer.deliver_all(decode_deliveries(message.data), batch_id)


@functions_framework.cloud_event
def deliver(cloud_event: CloudEvent) -> None:
    handle_push(cloud_event, _deliver, get_services().signer)
