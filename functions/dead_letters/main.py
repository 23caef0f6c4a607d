"""dead_letters: record undeliverable deliveries for inspection and replay."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.bootstrap import get_services
from shared.http.pubsub import PushedMessage, handle_push


def _record(message: PushedMessage) -> None:
    get_services().dead_letters.record(message.data, message.attributes)


@functions_framework.cloud_event
def dead_letters(cloud_event: CloudEvent) -> None:
    handle_push(cloud_event, _record, get_services().signer)
