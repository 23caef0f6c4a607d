"""The real `events` function over in-memory fakes, for tests that need its production server.

functions-framework loads this file as the function's source (`--target events`): it installs
fake services, writes two tenants (workspace id and auth headers) to the JSON file named by
STREAMS_TEST_TENANTS_FILE, then exposes `functions/events/main.py`'s entry point unchanged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shared.bootstrap import Services, set_services
from shared.config import Settings
from tests.fakes import FakeEventStore, FakePublisher, FakeTopicAdmin, InMemoryConfigStore
from tests.tenants import tenant_of

services = Services(
    Settings.from_env(),
    store=InMemoryConfigStore(),
    topics=FakeTopicAdmin(),
    publisher=FakePublisher(),
    event_store=FakeEventStore(),
)
set_services(services)
Path(os.environ["STREAMS_TEST_TENANTS_FILE"]).write_text(
    json.dumps({"watcher": tenant_of(services, "Watcher"), "other": tenant_of(services, "Other")})
)

from functions.events.main import events  # noqa: E402  (after the services it must find)

__all__ = ["events"]
