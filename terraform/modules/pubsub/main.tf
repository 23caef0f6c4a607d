# The Pub/Sub side of Streams. Per-source topics (`streams-source-<id>`, pushed to process) and
# per-destination topics (`streams-deliveries-<id>`, pushed to deliver) are created at run time by
# the functions that create sources and destinations; this module creates what exists once (the
# dead-letter topic and its subscription) and grants exactly what the run-time wiring needs.

locals {
  # Pub/Sub's service agent: signs push OIDC tokens and forwards messages to dead-letter topics.
  pubsub_agent = var.pubsub_agent
}

# The identity Pub/Sub signs every push with (STREAMS_PUSH_SERVICE_ACCOUNT); the pushed functions
# let only it invoke them.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "Streams Pub/Sub push"
  description  = "OIDC identity of Pub/Sub pushes to the process, deliver and dead_letters functions."
}

resource "google_service_account_iam_member" "agent_mints_push_tokens" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# Exactly the permissions of PubSubTopicAdmin (shared/adapters/pubsub.py): create topics, grant
# their publishers roles/pubsub.publisher on each (no function publishes project-wide), create
# push subscriptions on them, and re-point an existing subscription's push endpoint.
resource "google_project_iam_custom_role" "wiring" {
  project     = var.project_id
  role_id     = "${replace(var.name_prefix, "-", "_")}_topic_wiring"
  title       = "Streams topic wiring"
  description = "Create per-source and per-destination topics and their push subscriptions."
  permissions = [
    "pubsub.topics.create",
    "pubsub.topics.getIamPolicy",
    "pubsub.topics.setIamPolicy",
    "pubsub.topics.attachSubscription",
    "pubsub.subscriptions.create",
    "pubsub.subscriptions.update",
  ]
}

resource "google_project_iam_member" "wiring" {
  for_each = var.wiring_members

  project = var.project_id
  role    = google_project_iam_custom_role.wiring.name
  member  = each.value
}

# Setting an OIDC token of the push account on a subscription requires actAs on that account.
resource "google_service_account_iam_member" "wiring_acts_as_push" {
  for_each = var.wiring_members

  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountUser"
  member             = each.value
}

resource "google_pubsub_topic" "dead_letters" {
  project                    = var.project_id
  name                       = var.dead_letters.topic
  message_retention_duration = "${var.dead_letters.message_retention_hours * 3600}s"
}

resource "google_pubsub_subscription" "dead_letters" {
  project                    = var.project_id
  name                       = var.dead_letters.subscription
  topic                      = google_pubsub_topic.dead_letters.id
  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letters.message_retention_hours * 3600}s"

  # A dead letter must never be lost: retry with exponential backoff, never expire.
  retry_policy {
    minimum_backoff = "${var.dead_letters.min_backoff_seconds}s"
    maximum_backoff = "${var.dead_letters.max_backoff_seconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  push_config {
    push_endpoint = var.dead_letters.endpoint

    oidc_token {
      service_account_email = google_service_account.push.email
    }
  }

  depends_on = [google_service_account_iam_member.agent_mints_push_tokens]
}

# Pub/Sub's own dead-letter policy on every source subscription (after process failed
# STREAMS_PROCESS_MAX_ATTEMPTS times) and every deliveries subscription forwards here ...
resource "google_pubsub_topic_iam_member" "agent_publishes_dead_letters" {
  project = var.project_id
  topic   = google_pubsub_topic.dead_letters.name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_agent
}

# ... and acknowledges the forwarded message on the subscription it came from. Those
# subscriptions are created at run time, one per source and one per destination, so the grant
# cannot name them: it is project-wide.
resource "google_project_iam_member" "agent_acknowledges_forwarded" {
  project = var.project_id
  role    = "roles/pubsub.subscriber"
  member  = local.pubsub_agent
}

resource "google_pubsub_topic_iam_member" "dead_letter_publishers" {
  for_each = var.dead_letter_publishers

  project = var.project_id
  topic   = google_pubsub_topic.dead_letters.name
  role    = "roles/pubsub.publisher"
  member  = each.value
}
