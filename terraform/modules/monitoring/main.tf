# Operations out of the box: log-based metrics for what no built-in metric counts, a dashboard,
# alert policies, an uptime check on /healthz and a budget (docs/DEPLOY.md, "Monitoring and
# alerts"). The metrics and the dashboard are defined in locals.tf.

locals {
  # Alert policies take full channel names; operators mostly copy ids from the console.
  notification_channels = [
    for channel in var.notification_channels :
    startswith(channel, "projects/") ? channel : "projects/${var.project_id}/notificationChannels/${channel}"
  ]
  uptime_check = var.uptime_check
}

# --- log-based metrics ----------------------------------------------------------------------

resource "google_logging_metric" "counters" {
  for_each = local.log_metrics

  project     = var.project_id
  name        = each.value.name
  description = each.value.description
  filter      = each.value.filter

  metric_descriptor {
    metric_kind  = "DELTA"
    value_type   = "INT64"
    unit         = "1"
    display_name = each.value.display_name

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key         = labels.key
        value_type  = "STRING"
        description = labels.value
      }
    }
  }

  label_extractors = { for key in keys(each.value.labels) : key => "EXTRACT(jsonPayload.${key})" }
}

# Log-based metrics count entries an exclusion keeps out of storage, so the successful
# deliveries' lines (one per delivery) are counted and not stored; failures are kept to read.
resource "google_logging_project_exclusion" "delivered_outcomes" {
  project     = var.project_id
  name        = "${var.name_prefix}-delivered-outcomes"
  description = "Successful delivery outcomes: counted by ${google_logging_metric.counters["delivery_outcomes"].name}, not stored."
  filter      = local.stored_delivery_outcomes_excluded
}

# --- dashboard ------------------------------------------------------------------------------

resource "google_monitoring_dashboard" "streams" {
  project        = var.project_id
  dashboard_json = jsonencode(local.dashboard)

  depends_on = [google_logging_metric.counters]
}

# --- alert policies -------------------------------------------------------------------------

resource "google_monitoring_alert_policy" "ingest_5xx" {
  project               = var.project_id
  display_name          = "Streams: ingest answers 5xx"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "More than ${var.ingest_5xx_alert_ratio * 100}% of ingest requests answer 5xx over 5 minutes"
    condition_threshold {
      filter             = "${local.ingest_requests} AND metric.labels.response_code_class=\"5xx\""
      denominator_filter = local.ingest_requests
      comparison         = "COMPARISON_GT"
      threshold_value    = var.ingest_5xx_alert_ratio
      duration           = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "SDKs retry 5xx, so events wait on the clients. Read the ingest function's error logs; a dependency (Pub/Sub, Firestore) being unavailable answers 503."
  }
}

resource "google_monitoring_alert_policy" "backlog_age" {
  project               = var.project_id
  display_name          = "Streams: subscription backlog is old"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "A Streams subscription's oldest unacknowledged message is older than ${var.backlog_age_alert_seconds} s"
    condition_threshold {
      filter          = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.subscriptions}"
      comparison      = "COMPARISON_GT"
      threshold_value = var.backlog_age_alert_seconds
      duration        = "300s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "streams-process-<source> is a source's events waiting for process; streams-deliver-<destination> a destination's deliveries waiting (a failing destination retries until its attempts run out). Check the function's instances against its max and its error logs."
  }
}

resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "Streams: messages are dead-lettered"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Messages published to ${var.dead_letters_topic}"
    condition_threshold {
      filter          = local.dead_letters
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "Events or deliveries that failed for good are recorded with their reason: read them in the console (Dead letters, or GET /dead-letters), fix the cause, then replay them (POST /dead-letters/replay)."
  }
}

# A log-match condition, not a threshold on the metric: an alert policy cannot name a log-based
# metric until minutes after it is created, so one apply could not create both.
resource "google_monitoring_alert_policy" "events_insert_failures" {
  project               = var.project_id
  display_name          = "Streams: BigQuery insert errors"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "process could not insert events into BigQuery"
    condition_matched_log {
      filter = local.log_metrics.events_insert_failures.filter
    }
  }

  alert_strategy {
    notification_rate_limit {
      period = "300s"
    }
    auto_close = "1800s"
  }

  documentation {
    mime_type = "text/markdown"
    content   = "process retries the message, so nothing is lost while it lasts, but no event reaches BigQuery or any destination. The entry's jsonPayload.reason says why (BigQuery refused the rows, or was unavailable)."
  }
}

# Google's advice for Memorystore for Valkey: scale the node type up as memory use nears 80%.
# The window is sized for that (docs/DEPLOY.md, "Sizing"); a full instance refuses new claims
# (noeviction), and process then stops until there is room.
resource "google_monitoring_alert_policy" "dedup_memory" {
  count = var.dedup_memory_alert ? 1 : 0

  project               = var.project_id
  display_name          = "Streams: the deduplication store is filling up"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "Memorystore for Valkey memory use above 80%"
    condition_threshold {
      filter          = "metric.type=\"memorystore.googleapis.com/instance/memory/maximum_utilization\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0.8
      duration        = "900s"

      aggregations {
        alignment_period   = "300s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The window holds 48 hours of claims: its size follows the event rate (docs/DEPLOY.md, Sizing). Raise dedup_store.node_type one step and apply (in place); at 100% new claims are refused and process stops, without losing events, until there is room."
  }
}

# --- uptime check ---------------------------------------------------------------------------

resource "google_monitoring_uptime_check_config" "healthz" {
  count = local.uptime_check ? 1 : 0

  project      = var.project_id
  display_name = "Streams ${var.name_prefix}: https://${var.uptime_host}/healthz"
  timeout      = "10s"
  period       = "60s"

  http_check {
    path           = "/healthz"
    port           = 443
    use_ssl        = true
    validate_ssl   = true
    request_method = "GET"

    accepted_response_status_codes {
      status_value = 200
    }
  }

  monitored_resource {
    type = "uptime_url"
    labels = {
      project_id = var.project_id
      host       = var.uptime_host
    }
  }
}

resource "google_monitoring_alert_policy" "healthz" {
  count = local.uptime_check ? 1 : 0

  project               = var.project_id
  display_name          = "Streams: /healthz fails"
  combiner              = "OR"
  notification_channels = local.notification_channels

  conditions {
    display_name = "https://${var.uptime_host}/healthz fails from more than one location"
    condition_threshold {
      filter          = "metric.type=\"monitoring.googleapis.com/uptime_check/check_passed\" AND resource.type=\"uptime_url\" AND metric.labels.check_id=\"${google_monitoring_uptime_check_config.healthz[0].uptime_check_id}\""
      comparison      = "COMPARISON_GT"
      threshold_value = 1
      duration        = "60s"

      aggregations {
        alignment_period     = "1200s"
        per_series_aligner   = "ALIGN_NEXT_OLDER"
        cross_series_reducer = "REDUCE_COUNT_FALSE"
        group_by_fields      = ["resource.label.*"]
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "The edge (the load balancer, when there is one) or the ingest function does not answer 200 on /healthz: SDKs cannot send events. Check the certificate, the DNS records and the ingest function."
  }
}

# --- budget ---------------------------------------------------------------------------------

data "google_project" "this" {
  count = var.budget != null ? 1 : 0

  project_id = var.project_id
}

resource "google_billing_budget" "project" {
  count = var.budget != null ? 1 : 0

  billing_account = var.budget.billing_account
  display_name    = "Streams ${var.project_id}"

  budget_filter {
    projects        = ["projects/${data.google_project.this[0].number}"]
    calendar_period = "MONTH"
  }

  amount {
    specified_amount {
      units = tostring(var.budget.amount)
    }
  }

  threshold_rules {
    threshold_percent = 0.5
  }
  threshold_rules {
    threshold_percent = 0.9
  }
  threshold_rules {
    threshold_percent = 1.0
  }
  threshold_rules {
    threshold_percent = 1.0
    spend_basis       = "FORECASTED_SPEND"
  }

  # The billing account's administrators are emailed in any case; the channels as well.
  dynamic "all_updates_rule" {
    for_each = length(local.notification_channels) > 0 ? [local.notification_channels] : []
    content {
      monitoring_notification_channels = slice(all_updates_rule.value, 0, min(5, length(all_updates_rule.value)))
    }
  }
}
