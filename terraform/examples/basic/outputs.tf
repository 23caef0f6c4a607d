output "url" {
  description = "The one base URL of Streams behind the load balancer: SDKs' host, management API, console, live stream (null with edge kind \"direct\")."
  value       = module.streams.url
}

output "edge_address" {
  description = "Point each of your domains here (DNS A record); null with edge kind \"direct\"."
  value       = module.streams.edge_address
}

output "endpoints" {
  description = "The base URL of each HTTP function's routes, by function (each function's own URL with edge kind \"direct\")."
  value       = module.streams.endpoints
}

output "cli_environment" {
  description = "Environment for the `streams` CLI against this deployment."
  value       = module.streams.cli_environment
}

output "customer_publisher" {
  description = "Grant this service account roles/pubsub.publisher on each of your topics used by a pubsub destination."
  value       = module.streams.customer_publisher
}
