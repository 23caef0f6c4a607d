# What the module watches, as values only (no resource): the log-based metrics' definitions and
# the dashboard. tests/unit/test_terraform_monitoring.py evaluates this file with
# `terraform console` and checks every metric it names against the code.

locals {
  # Every subscription Streams creates starts with it: streams-process-<source>,
  # streams-deliver-<destination> (made at run time) and streams-dead-letters-record.
  subscription_prefix = "streams-"

  ingest_service  = var.functions["ingest"].service
  process_service = var.functions["process"].service

  # Counters of the lines shared/structured_log.py writes, selected by their `message` (the code's
  # DELIVERY_OUTCOME and EVENTS_INSERT_FAILED); each label is the line's field of that name.
  log_metrics = {
    delivery_outcomes = {
      name         = "${var.name_prefix}-delivery-outcomes"
      display_name = "Streams delivery outcomes"
      description  = "One per delivery attempt deliver settles (shared/services/deliver.py)."
      filter       = "jsonPayload.message=\"delivery outcome\""
      labels = {
        destination_type = "The destination's type (webhook, ga4, ...); none when it no longer exists."
        status           = "Where the attempt left the delivery: delivered, skipped, dropped, retrying or dead_lettered."
      }
    }
    events_insert_failures = {
      name         = "${var.name_prefix}-events-insert-failures"
      display_name = "Streams BigQuery insert errors"
      description  = "One per failed insert of a source message's events into BigQuery (shared/services/process.py); the message is redelivered."
      filter       = "jsonPayload.message=\"events insert failed\""
      labels = {
        error = "The exception's class (Unavailable for refused rows and transient errors)."
      }
    }
  }
  log_metric_types = { for key, metric in local.log_metrics : key => "logging.googleapis.com/user/${metric.name}" }

  # The successful outcomes: counted by the metric, kept out of storage (one entry per delivery).
  stored_delivery_outcomes_excluded = "${local.log_metrics.delivery_outcomes.filter} AND jsonPayload.status=(\"delivered\" OR \"skipped\" OR \"dropped\")"

  ingest_requests = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.ingest_service}\""
  subscriptions   = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=starts_with(\"${local.subscription_prefix}\")"
  dead_letters    = "metric.type=\"pubsub.googleapis.com/topic/send_message_operation_count\" AND resource.type=\"pubsub_topic\" AND resource.labels.topic_id=\"${var.dead_letters_topic}\""

  charts = [
    {
      title = "Ingest requests by response class (per second)"
      xyChart = {
        dataSets = [{
          plotType       = "STACKED_AREA"
          legendTemplate = "$${metric.labels.response_code_class}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = local.ingest_requests
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_code_class"] }
          } }
        }]
      }
    },
    {
      title = "Ingest 4xx and 5xx (per second)"
      xyChart = {
        dataSets = [{
          plotType       = "LINE"
          legendTemplate = "$${metric.labels.response_code_class}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "${local.ingest_requests} AND metric.labels.response_code_class=one_of(\"4xx\", \"5xx\")"
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.response_code_class"] }
          } }
        }]
      }
    },
    {
      title = "Ingest latency, p50 and p99 (ms)"
      xyChart = {
        dataSets = [for percentile in ["50", "99"] : {
          plotType       = "LINE"
          legendTemplate = "p${percentile}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"run.googleapis.com/request_latencies\" AND resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.ingest_service}\""
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${percentile}" }
          } }
        }]
      }
    },
    {
      # process streams every event it stores into BigQuery, and is BigQuery's only streaming
      # writer: rows inserted per second are events through process.
      title = "Events through process (per second)"
      xyChart = {
        dataSets = [
          {
            plotType       = "LINE"
            legendTemplate = "events stored"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = "metric.type=\"bigquery.googleapis.com/storage/insertall_inserted_rows\" AND resource.type=\"bigquery_project\""
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
            } }
          },
          {
            plotType       = "LINE"
            legendTemplate = "source messages pushed"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.process_service}\""
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
            } }
          },
        ]
      }
    },
    {
      title = "Backlog by subscription (undelivered messages)"
      xyChart = {
        dataSets = [{
          plotType       = "LINE"
          legendTemplate = "$${resource.labels.subscription_id}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND ${local.subscriptions}"
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.label.subscription_id"] }
          } }
        }]
      }
    },
    {
      title = "Oldest unacknowledged message by subscription (s)"
      xyChart = {
        dataSets = [{
          plotType       = "LINE"
          legendTemplate = "$${resource.labels.subscription_id}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"pubsub.googleapis.com/subscription/oldest_unacked_message_age\" AND ${local.subscriptions}"
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.label.subscription_id"] }
          } }
        }]
        thresholds = [{ value = var.backlog_age_alert_seconds, label = "alert" }]
      }
    },
    {
      title = "Dead-letter inflow (messages per second)"
      xyChart = {
        dataSets = [{
          plotType       = "LINE"
          legendTemplate = "to ${var.dead_letters_topic}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = local.dead_letters
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
          } }
        }]
      }
    },
    {
      title = "BigQuery insert errors (per minute)"
      xyChart = {
        dataSets = [{
          plotType       = "STACKED_BAR"
          legendTemplate = "$${metric.labels.error}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"${local.log_metric_types.events_insert_failures}\""
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_SUM", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.error"] }
          } }
        }]
      }
    },
    {
      title = "Deliveries by destination type (per second)"
      xyChart = {
        dataSets = [{
          plotType       = "STACKED_AREA"
          legendTemplate = "$${metric.labels.destination_type}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"${local.log_metric_types.delivery_outcomes}\" AND metric.labels.status=\"delivered\""
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.destination_type"] }
          } }
        }]
      }
    },
    {
      title = "Failed deliveries by destination type (per second)"
      xyChart = {
        dataSets = [{
          plotType       = "STACKED_AREA"
          legendTemplate = "$${metric.labels.destination_type} $${metric.labels.status}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"${local.log_metric_types.delivery_outcomes}\" AND metric.labels.status=one_of(\"retrying\", \"dead_lettered\")"
            aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.destination_type", "metric.label.status"] }
          } }
        }]
      }
    },
  ]

  # One chart a function: its instances (active and idle, every revision) under its max_instances.
  instance_charts = [for name in sort(keys(var.functions)) : {
    title = "Instances: ${name} (max ${var.functions[name].max_instances})"
    xyChart = {
      dataSets = [{
        plotType       = "STACKED_AREA"
        legendTemplate = "$${metric.labels.state}"
        timeSeriesQuery = { timeSeriesFilter = {
          filter      = "metric.type=\"run.googleapis.com/container/instance_count\" AND resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${var.functions[name].service}\""
          aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.state"] }
        } }
      }]
      thresholds = [{ value = var.functions[name].max_instances, label = "max_instances" }]
    }
  }]

  # Two charts a row, then four instance charts a row, on the 48 columns of a mosaic layout.
  chart_rows = ceil(length(local.charts) / 2)
  dashboard = {
    displayName = "Streams (${var.name_prefix})"
    mosaicLayout = {
      columns = 48
      tiles = concat(
        [for index, chart in local.charts : {
          xPos = (index % 2) * 24, yPos = floor(index / 2) * 16, width = 24, height = 16, widget = chart
        }],
        [for index, chart in local.instance_charts : {
          xPos = (index % 4) * 12, yPos = local.chart_rows * 16 + floor(index / 4) * 12, width = 12, height = 12, widget = chart
        }],
      )
    }
  }
}
