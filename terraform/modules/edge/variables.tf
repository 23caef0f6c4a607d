variable "project_id" {
  description = "Project the load balancer, its certificate and its Cloud Armor policy live in."
  type        = string
}

variable "region" {
  description = "Region of the functions (their serverless network endpoint groups are regional)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
}

variable "domains" {
  description = "The customer's own host names (e.g. data.shop.example.com) the Google-managed certificate covers; each needs a DNS A record to the output address."
  type        = list(string)
}

variable "functions" {
  description = "The HTTP functions' Cloud Run service names, by function name (functions/<name>). The routes file may name only these."
  type        = map(string)
}

variable "ingest" {
  description = "Cloud Armor limits on the ingest function (docs/DEPLOY.md, Edge protection)."
  type = object({
    enabled                           = bool
    requests_per_minute_per_ip        = number
    requests_per_minute_per_write_key = number
    max_body_bytes                    = number
    log_sample_rate                   = number
  })

  validation {
    condition     = var.ingest.requests_per_minute_per_ip >= 1 && var.ingest.requests_per_minute_per_write_key >= 1 && var.ingest.max_body_bytes >= 1
    error_message = "ingest limits must be positive."
  }
  validation {
    condition     = var.ingest.log_sample_rate >= 0 && var.ingest.log_sample_rate <= 1
    error_message = "ingest.log_sample_rate must be between 0 and 1."
  }
}

variable "labels" {
  description = "Labels put on every resource that takes them."
  type        = map(string)
  default     = {}
}
