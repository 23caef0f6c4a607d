# Operations out of the box, in the same apply: a dashboard, alert policies, an uptime check on
# /healthz, a budget and the log-based metrics they read (modules/monitoring; docs/DEPLOY.md,
# "Monitoring and alerts").

module "monitoring" {
  source = "./modules/monitoring"

  project_id  = var.project_id
  name_prefix = var.name_prefix

  # Every function: its Cloud Run service (a gen2 function's own name) and its instance ceiling.
  functions = {
    for name, function in merge(module.http_functions, module.pubsub_functions, module.internal_functions) : name => {
      service       = function.name
      max_instances = local.sizes[name].max_instances
    }
  }
  dead_letters_topic = local.dead_letters_topic

  notification_channels     = var.alert_notification_channels
  backlog_age_alert_seconds = var.backlog_age_alert_seconds
  # Behind the load balancer its first domain; with edge "direct" ingest's own host, unknown
  # until ingest exists, which is why the check's existence is a separate, known flag.
  uptime_check       = true
  dedup_memory_alert = local.valkey
  uptime_host        = local.direct ? trimprefix(module.http_functions["ingest"].uri, "https://") : try(var.domains[0], null)
  budget = var.billing_account == null ? null : {
    billing_account = var.billing_account
    amount          = var.monthly_budget
  }

  depends_on = [time_sleep.apis_ready]
}

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channels the alerts notify (and the budget, its first 5): ids or full names (projects/<p>/notificationChannels/<id>), created beforehand (e.g. `gcloud beta monitoring channels create --type=email --channel-labels=email_address=ops@example.com`). Empty: alerts open incidents in the console only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for channel in var.alert_notification_channels : can(regex("^(projects/[^/]+/notificationChannels/)?[0-9]+$", channel))])
    error_message = "alert_notification_channels takes channel ids (digits) or projects/<project>/notificationChannels/<id>."
  }
}

variable "backlog_age_alert_seconds" {
  description = "Alert when a Streams subscription (a source's events waiting for process, a destination's deliveries waiting for deliver, the dead letters waiting to be recorded) has held a message unacknowledged for longer than this."
  type        = number
  default     = 1800

  validation {
    condition     = var.backlog_age_alert_seconds >= 60
    error_message = "backlog_age_alert_seconds must be at least 60."
  }
}

variable "billing_account" {
  description = "Billing account id of the project (012345-6789AB-CDEF01), for a monthly budget alert on the project's spend; null (the default) creates no budget. The identity running Terraform needs roles/billing.costsManager on the account."
  type        = string
  default     = null

  validation {
    condition     = var.billing_account == null || can(regex("^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$", var.billing_account))
    error_message = "billing_account must be a billing account id such as 012345-6789AB-CDEF01."
  }
}

variable "monthly_budget" {
  description = "The budget's monthly amount, in whole units of the billing account's currency: alerts at 50%, 90% and 100% of it, and when the month's forecast passes 100%. Used only with billing_account."
  type        = number
  default     = 1000

  validation {
    condition     = var.monthly_budget > 0 && floor(var.monthly_budget) == var.monthly_budget
    error_message = "monthly_budget must be a positive whole number."
  }
}

output "monitoring_dashboard" {
  description = "The Streams dashboard in Cloud Monitoring (Monitoring > Dashboards)."
  value       = module.monitoring.dashboard_id
}
