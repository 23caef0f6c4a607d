output "address" {
  description = "The load balancer's global IPv4 address: point each of `domains` at it (DNS A record)."
  value       = google_compute_global_address.this.address
}

output "url" {
  description = "https://<first domain>: the base URL of every route (SDKs' host, management API, console, live stream)."
  value       = "https://${var.domains[0]}"
}

output "ingest_security_policy" {
  description = "The Cloud Armor policy on the ingest backend (null when disabled)."
  value       = one(google_compute_security_policy.ingest[*].name)
}
