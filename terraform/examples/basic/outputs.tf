output "ingest_url" {
  description = "Point Segment/RudderStack SDKs here (their `host`)."
  value       = module.streams.ingest_url
}

output "management_url" {
  description = "Base URL of the management API (Bearer tokens from `streams token create`)."
  value       = module.streams.management_url
}

output "live_url" {
  description = "Base URL of the live event stream (`streams tail --gateway <live_url>`)."
  value       = module.streams.live_url
}

output "cli_environment" {
  description = "Environment for the `streams` CLI against this deployment."
  value       = module.streams.cli_environment
}

output "customer_publisher" {
  description = "Grant this service account roles/pubsub.publisher on each of your topics used by a pubsub destination."
  value       = module.streams.customer_publisher
}
