output "url" {
  description = "With edge.kind = \"load_balancer\": https://<first of domains>, the one base URL of every route: SDKs' host (POST <url>/v1/batch, ...), the management API (<url>/api/v1/workspaces/{id}/..., <url>/v1/streams/...), the console (<url>/console/) and the live stream (`streams tail --gateway <url>`). null with \"direct\": each function has its own (`endpoints`)."
  value       = one(module.edge[*].url)
}

output "edge_address" {
  description = "The load balancer's IPv4 address: create a DNS A record to it for each of `domains`; the certificate is issued once they resolve. null with edge.kind = \"direct\"."
  value       = one(module.edge[*].address)
}

output "endpoints" {
  description = "The base URL of each public HTTP function's routes, by function name (shared/api/routes.py says which function serves which path): `url` for every one behind the load balancer; with edge.kind = \"direct\", each function's own run.app URL (endpoints.ingest is the SDKs' host, endpoints.events the live stream's)."
  value = {
    for name, function in module.http_functions : name => local.direct ? function.uri : one(module.edge[*].url)
  }
}

output "function_urls" {
  description = "The run.app URL of every function, by name: Pub/Sub's push endpoints. Behind the load balancer they refuse callers from the internet (ingress internal and load balancer only; use `url`); with edge.kind = \"direct\" the public HTTP functions' are their way in (`endpoints`)."
  value = merge(
    { for name, function in module.http_functions : name => function.uri },
    { for name, function in module.pubsub_functions : name => function.uri },
    { for name, function in module.internal_functions : name => function.uri },
  )
}

output "service_accounts" {
  description = "Each function's own service account email, by function name."
  value = merge(
    { for name, function in module.http_functions : name => function.service_account_email },
    { for name, function in module.pubsub_functions : name => function.service_account_email },
    { for name, function in module.internal_functions : name => function.service_account_email },
  )
}

output "push_service_account" {
  description = "The service account Pub/Sub signs pushes with (STREAMS_PUSH_SERVICE_ACCOUNT)."
  value       = module.pubsub_identity.push_service_account_email
}

output "dead_letters_topic" {
  description = "Full resource name of the dead-letter topic."
  value       = module.pubsub_identity.dead_letters_topic
}

output "bigquery_dataset" {
  description = "The BigQuery dataset holding the events table."
  value       = module.datastores.bigquery_dataset
}

output "cli_environment" {
  description = "Environment for the `streams` CLI against this deployment (workspace, token and source creation): export each pair before running it with application-default credentials."
  value = {
    STREAMS_PROJECT_ID            = var.project_id
    STREAMS_BIGQUERY_DATASET      = module.datastores.bigquery_dataset
    STREAMS_PUSH_SERVICE_ACCOUNT  = module.pubsub_identity.push_service_account_email
    STREAMS_PROCESS_PUSH_ENDPOINT = module.pubsub_functions["process"].uri
    STREAMS_DELIVER_PUSH_ENDPOINT = module.pubsub_functions["deliver"].uri
    STREAMS_DEAD_LETTERS_TOPIC    = local.dead_letters_topic
    # The subscriptions' retry and dead-letter settings, so `streams reconcile` and
    # `streams source create` make them as the functions do.
    STREAMS_PROCESS_MAX_ATTEMPTS  = tostring(var.settings.process_max_attempts)
    STREAMS_PROCESS_MAX_BACKOFF   = tostring(var.settings.process_max_backoff_seconds)
    STREAMS_DELIVERY_MIN_BACKOFF  = tostring(var.settings.delivery_min_backoff_seconds)
    STREAMS_DELIVERY_MAX_BACKOFF  = tostring(var.settings.delivery_max_backoff_seconds)
    STREAMS_DELIVERY_MAX_ATTEMPTS = tostring(var.settings.delivery_max_attempts)
    # Granted on each topic `streams reconcile` or `streams source create` wires.
    STREAMS_SOURCE_TOPIC_PUBLISHERS   = local.settings_environment.STREAMS_SOURCE_TOPIC_PUBLISHERS
    STREAMS_DELIVERY_TOPIC_PUBLISHERS = local.settings_environment.STREAMS_DELIVERY_TOPIC_PUBLISHERS
  }
}

output "customer_publisher" {
  description = "The service account deliver publishes to customers' topics as: grant it roles/pubsub.publisher on each topic used by a pubsub destination."
  value       = google_service_account.customer_publisher.email
}

output "warehouse_sync" {
  description = "The warehouse's scheduled sync: the Cloud Scheduler job (run it now with `gcloud scheduler jobs run <job> --location <region>`) and the service account it calls the private warehouse function as."
  value = {
    job             = google_cloud_scheduler_job.warehouse_sync.name
    service_account = google_service_account.warehouse_scheduler.email
  }
}

output "dedup_store" {
  description = "The deduplication store (dedup_store): its kind and, for valkey, the Memorystore instance's resource name and the URL process, events, dead_letters and event_contracts connect to (STREAMS_VALKEY_URL); null for firestore."
  value = {
    kind     = var.dedup_store.kind
    instance = one(google_memorystore_instance.dedup[*].name)
    url      = local.valkey ? local.valkey_environment.STREAMS_VALKEY_URL : null
  }
}
