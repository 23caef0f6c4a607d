"""`make bench` (second part): latency from ingest's answer to the webhook's receipt.

Starts the local stack as `make dev` does (`emulators.dev.LocalStack`: every function its own
functions-framework process, Pub/Sub push wiring, the gateway) on its own ports, state dir,
project and (unless --emulators shared) emulators, creates a webhook destination pointing at
a local receiver and a forwarding rule for every event, then sends events through the gateway
on an open-loop schedule (100 events/s: 5 s warm-up, 30 s measured), as single `POST /v1/track`
calls or, with --batch-size N, as `POST /v1/batch` calls of N events, or, with --sdk, through
the real Segment SDK (segment-analytics-python with its default batching: a request every
0.5 s or 100 events). Each event's latency is the time from ingest's 200 to the receiver's
first receipt of its messageId (the `Idempotency-Key` header); with --sdk the time from the
app's `track()` call is reported too. Firestore's records of each event (event log, delivery)
split that time into stages. Writes bench/results/pipeline-<scenario>-<UTC>.json and
pipeline-<scenario>-latest.json (scenario `track`, `batch<N>` or `sdk`).
Exit status: 0, or 1 when a request to ingest failed (losses and the target are only reported).
"""
