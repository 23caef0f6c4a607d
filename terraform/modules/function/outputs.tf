output "name" {
  description = "The deployed function's name (also its Cloud Run service's)."
  value       = google_cloudfunctions2_function.this.name
}

output "uri" {
  description = "The function's HTTPS address (its Cloud Run service URI): push endpoint and gateway backend."
  value       = google_cloudfunctions2_function.this.service_config[0].uri
}

output "service_account_email" {
  description = "Email of the function's own service account."
  value       = google_service_account.this.email
}

output "member" {
  description = "IAM member string of the function's service account (serviceAccount:<email>)."
  value       = local.member
}

output "source_object" {
  description = "The uploaded source zip (gs://bucket/object), named by the content hash of its files."
  value       = "gs://${var.source_bucket}/${google_storage_bucket_object.source.name}"
}
