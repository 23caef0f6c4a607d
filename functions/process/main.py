"""process: deduplicate, validate, store and route the events of a source topic's message."""

import functions_framework
from cloudevents.http import CloudEvent

from shared.bootstrap import get_services
from shared.domain.pipeline import parse_source_message
from shared.http.pubsub import PushedMessage, handle_push


def _process(message: PushedMessage) -> None:
    source_message = parse_source_message(message.data, message.attributes, message.message_id)
    get_services().processor.process(source_message)


@functions_framework.cloud_event
def process(cloud_event: CloudEvent) -> None:
    handle_push(cloud_event, _process, get_services().signer)
