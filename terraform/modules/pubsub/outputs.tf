output "push_service_account_email" {
  description = "Email of the service account Pub/Sub signs pushes with (STREAMS_PUSH_SERVICE_ACCOUNT)."
  value       = google_service_account.push.email
}

output "push_service_account_member" {
  description = "IAM member string of the push service account, to grant run.invoker on pushed functions."
  value       = "serviceAccount:${google_service_account.push.email}"
}

output "dead_letters_topic" {
  description = "Full resource name of the dead-letter topic."
  value       = google_pubsub_topic.dead_letters.id
}

output "dead_letters_subscription" {
  description = "Full resource name of the dead-letter topic's push subscription to dead_letters."
  value       = google_pubsub_subscription.dead_letters.id
}

output "wiring_role" {
  description = "The custom role granted to the functions that create topics and subscriptions at run time."
  value       = google_project_iam_custom_role.wiring.name
}
