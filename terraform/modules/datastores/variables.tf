variable "project_id" {
  description = "Project of the Firestore database and the BigQuery dataset."
  type        = string
}

variable "labels" {
  description = "Labels added to the BigQuery dataset and tables."
  type        = map(string)
  default     = {}
}

variable "firestore" {
  description = "The (default) Firestore database in native mode: its location (a region such as us-central1, or a multi-region such as nam5/eur3), whether to create it (false when the project already has one), and delete protection."
  type = object({
    location_id       = string
    create_database   = optional(bool, true)
    delete_protection = optional(bool, true)
  })

  validation {
    condition     = length(var.firestore.location_id) > 0
    error_message = "firestore.location_id must be set (e.g. us-central1, nam5, eur3)."
  }
}

variable "bigquery" {
  description = "The BigQuery dataset (STREAMS_BIGQUERY_DATASET) and its tables. Each table's schema is read from the JSON file the code uses (shared/schemas/bigquery/<table>.json); tables are partitioned by day on partition_field and clustered by clustering (shared/domain/storage.py)."
  type = object({
    dataset_id                = string
    location                  = string
    deletion_protection       = optional(bool, true)
    partition_expiration_days = optional(number)
    tables = map(object({
      schema_file     = string
      partition_field = string
      clustering      = optional(list(string), [])
    }))
  })

  validation {
    condition     = can(regex("^[A-Za-z0-9_]{1,1024}$", var.bigquery.dataset_id))
    error_message = "bigquery.dataset_id may contain only letters, digits and underscores."
  }
  validation {
    condition     = alltrue([for table in values(var.bigquery.tables) : length(table.clustering) <= 4])
    error_message = "BigQuery clusters by at most 4 columns."
  }
  validation {
    condition     = var.bigquery.partition_expiration_days == null || try(var.bigquery.partition_expiration_days >= 1, false)
    error_message = "bigquery.partition_expiration_days must be null (keep forever) or at least 1."
  }
}

variable "bigquery_readers" {
  description = "Members (keyed by function name) that query the dataset (roles/bigquery.dataViewer on it; they also need roles/bigquery.jobUser on the project to run queries)."
  type        = map(string)
  default     = {}
}

variable "bigquery_writers" {
  description = "Members (keyed by function name) that stream rows into the dataset's tables (roles/bigquery.dataEditor on it)."
  type        = map(string)
  default     = {}
}
