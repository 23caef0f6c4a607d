output "dashboard_id" {
  description = "The Cloud Monitoring dashboard (projects/<number>/dashboards/<id>): Monitoring > Dashboards > Streams."
  value       = google_monitoring_dashboard.streams.id
}

output "alert_policies" {
  description = "The alert policies' names, by what they watch."
  value = merge(
    {
      ingest_5xx             = google_monitoring_alert_policy.ingest_5xx.name
      backlog_age            = google_monitoring_alert_policy.backlog_age.name
      dead_letters           = google_monitoring_alert_policy.dead_letters.name
      events_insert_failures = google_monitoring_alert_policy.events_insert_failures.name
    },
    { for policy in google_monitoring_alert_policy.healthz : "healthz" => policy.name },
  )
}

output "log_metric_types" {
  description = "The log-based metrics' types (logging.googleapis.com/user/...), by what they count."
  value       = { for key, metric in google_logging_metric.counters : key => "logging.googleapis.com/user/${metric.name}" }
}

output "uptime_check_id" {
  description = "The /healthz uptime check's id; null without uptime_check."
  value       = one(google_monitoring_uptime_check_config.healthz[*].uptime_check_id)
}
