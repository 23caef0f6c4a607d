output "ingest_url" {
  description = "Base URL for SDKs and HTTP senders: POST <ingest_url>/v1/track, /v1/batch, ... (Segment SDK `host`)."
  value       = module.api.url
}

output "management_url" {
  description = "Base URL of the management APIs: <management_url>/api/v1/workspaces/{id}/... and <management_url>/v1/streams/... (Authorization: Bearer <token>)."
  value       = module.api.url
}

output "live_url" {
  description = "Base URL for the live event stream (Server-Sent Events), which API Gateway cannot stream: GET <live_url>/api/v1/workspaces/{id}/events/live on the events function itself (`streams tail --gateway <live_url>`)."
  value       = module.http_functions["events"].uri
}

output "function_urls" {
  description = "The HTTPS URL of every function, by name."
  value = merge(
    { for name, function in module.http_functions : name => function.uri },
    { for name, function in module.pubsub_functions : name => function.uri },
  )
}

output "service_accounts" {
  description = "Each function's own service account email, by function name."
  value = merge(
    { for name, function in module.http_functions : name => function.service_account_email },
    { for name, function in module.pubsub_functions : name => function.service_account_email },
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
  }
}

output "customer_publisher" {
  description = "The service account deliver publishes to customers' topics as: grant it roles/pubsub.publisher on each topic used by a pubsub destination."
  value       = google_service_account.customer_publisher.email
}
