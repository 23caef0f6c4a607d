variable "project_id" {
  description = "Project of the topics and subscriptions."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the push service account's and the wiring role's names."
  type        = string
}

variable "dead_letters" {
  description = "The dead-letter topic and its push subscription to the dead_letters function: names as the code knows them (STREAMS_DEAD_LETTERS_TOPIC, shared/services/topology.py), the function's URL, and the redelivery backoff of failed pushes."
  type = object({
    topic                   = string
    subscription            = string
    endpoint                = string
    min_backoff_seconds     = optional(number, 10)
    max_backoff_seconds     = optional(number, 600)
    message_retention_hours = optional(number, 168)
  })

  validation {
    condition     = startswith(var.dead_letters.endpoint, "https://")
    error_message = "dead_letters.endpoint must be the HTTPS URL of the dead_letters function."
  }
  validation {
    condition     = var.dead_letters.min_backoff_seconds >= 0 && var.dead_letters.min_backoff_seconds <= var.dead_letters.max_backoff_seconds && var.dead_letters.max_backoff_seconds <= 600
    error_message = "dead_letters backoff must satisfy 0 <= min <= max <= 600 seconds (Pub/Sub's limits)."
  }
  validation {
    condition     = var.dead_letters.message_retention_hours >= 1 && var.dead_letters.message_retention_hours <= 168
    error_message = "dead_letters.message_retention_hours must be between 1 and 168 (7 days)."
  }
}

variable "wiring_members" {
  description = "Functions that create per-source and per-destination topics with push subscriptions at run time, keyed by function name: they get topic/subscription create on the project and actAs on the push service account (needed to set its OIDC token on a subscription)."
  type        = map(string)
  default     = {}
}

variable "dead_letter_publishers" {
  description = "Members (keyed by function name) that publish to the dead-letter topic themselves (deliver, after its last attempt)."
  type        = map(string)
  default     = {}
}

variable "pubsub_agent" {
  description = "IAM member of Pub/Sub's service agent (serviceAccount:service-<number>@gcp-sa-pubsub.iam.gserviceaccount.com), created by the root module."
  type        = string
}
