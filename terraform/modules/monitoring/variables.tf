variable "project_id" {
  description = "Project of the functions, the topics and the BigQuery dataset: the dashboard, alerts, metrics and uptime check live in it, and the budget counts its spend."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the names of the log-based metrics, the dashboard, the alert policies and the uptime check."
  type        = string
}

variable "functions" {
  description = "Every function, by name (functions/<name>): its Cloud Run service's name and its max_instances (the instances charts draw it as a line)."
  type = map(object({
    service       = string
    max_instances = number
  }))

  validation {
    condition     = contains(keys(var.functions), "ingest") && contains(keys(var.functions), "process")
    error_message = "functions must hold ingest and process: the request, latency and throughput charts and the 5xx alert read them."
  }
}

variable "dead_letters_topic" {
  description = "The dead-letter topic (STREAMS_DEAD_LETTERS_TOPIC): every message published to it is dead-letter inflow."
  type        = string
}

variable "notification_channels" {
  description = "Notification channels every alert policy (and the budget, its first 5) notifies: ids (1234567890) or full names (projects/<p>/notificationChannels/<id>). Empty: incidents are opened and shown in the console, and nobody is notified."
  type        = list(string)
  default     = []
}

variable "backlog_age_alert_seconds" {
  description = "Alert when a Streams subscription's oldest unacknowledged message is older than this (seconds)."
  type        = number
  default     = 1800
}

variable "ingest_5xx_alert_ratio" {
  description = "Alert when more than this fraction of ingest's requests answer 5xx over 5 minutes."
  type        = number
  default     = 0.01
}

variable "dedup_memory_alert" {
  description = "Whether the deduplication window is in Memorystore for Valkey (dedup_store.kind = \"valkey\"): then an alert fires when its memory use passes 80% of the node's (Google's advice: scale the node type up before it fills; a full instance stops processing)."
  type        = bool
  default     = false
}

variable "uptime_check" {
  description = "Whether to create the /healthz uptime check and its alert on `uptime_host`. A flag of its own because it must be known when planning, and the host may not be (a function's run.app host before its first deploy)."
  type        = bool
  default     = false
}

variable "uptime_host" {
  description = "Host name the uptime check calls on https://<host>/healthz: the first of the load balancer's domains, or ingest's run.app host with edge \"direct\". Required with uptime_check."
  type        = string
  default     = null

  validation {
    condition     = !var.uptime_check || var.uptime_host != null
    error_message = "uptime_host is required with uptime_check = true."
  }
}

variable "budget" {
  description = "A monthly budget on the project's spend, alerting at 50%, 90% and 100% (and at 100% forecast): the billing account id (012345-6789AB-CDEF01) and the amount in the account's currency; null creates no budget."
  type = object({
    billing_account = string
    amount          = number
  })
  default = null

  validation {
    condition     = var.budget == null || try(var.budget.amount > 0 && floor(var.budget.amount) == var.budget.amount, false)
    error_message = "budget.amount must be a positive whole number (units of the billing account's currency)."
  }
}
