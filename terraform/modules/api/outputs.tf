output "url" {
  description = "Base URL of the gateway (https://<default hostname>): every route of the route table."
  value       = "https://${google_api_gateway_gateway.this.default_hostname}"
}

output "api_config" {
  description = "Full id of the API config the gateway serves."
  value       = google_api_gateway_api_config.this.id
}

output "managed_service" {
  description = "The API's managed service name (Service Management), enabled in the project."
  value       = google_api_gateway_api.this.managed_service
}
