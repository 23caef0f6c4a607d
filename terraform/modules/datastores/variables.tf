variable "project_id" {
  description = "Project of the Firestore database and the BigQuery dataset."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of the custom roles' ids (as <prefix with _>_warehouse_*): one Streams per project, but the ids must not meet another deployment's."
  type        = string
  default     = "streams"
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
    condition     = can(regex("^[A-Za-z0-9_]+$", var.bigquery.dataset_id)) && length(var.bigquery.dataset_id) <= 1024
    error_message = "bigquery.dataset_id may contain only letters, digits and underscores, at most 1024 of them."
  }
  validation {
    condition     = alltrue([for table in values(var.bigquery.tables) : length(table.clustering) <= 4])
    error_message = "BigQuery clusters by at most 4 columns."
  }
  validation {
    condition     = var.bigquery.partition_expiration_days == null || try(var.bigquery.partition_expiration_days >= 1 && var.bigquery.partition_expiration_days <= 36500 && floor(var.bigquery.partition_expiration_days) == var.bigquery.partition_expiration_days, false)
    error_message = "bigquery.partition_expiration_days must be null (keep forever) or a whole number of days from 1 to 36500."
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

variable "warehouse_syncers" {
  description = "Members (keyed by function name) that sync the per-workspace warehouses: create `<dataset>_ws_*` datasets and write their views, authorise them on the dataset, and DELETE expired rows from `warehouse_table`. They also need bigquery_readers (dataViewer) and roles/bigquery.jobUser on the project."
  type        = map(string)
  default     = {}
}

variable "warehouse_table" {
  description = "The table of `bigquery.tables` the warehouse views read and a workspace's retention deletes from."
  type        = string
  default     = "events"
}

variable "recovery" {
  description = "What recovers lost or damaged data (docs/DEPLOY.md, \"Data safety and recovery\"): firestore_point_in_time_recovery keeps 7 days of Firestore versions (applied only to a database this module creates); firestore_backup_retention_days keeps a daily backup of \"(default)\" this many days (1-7; 0: no schedule, for a database that already has a daily one); bigquery_time_travel_hours is the dataset's time-travel window (48-168, in whole days)."
  type = object({
    firestore_point_in_time_recovery = optional(bool, true)
    firestore_backup_retention_days  = optional(number, 7)
    bigquery_time_travel_hours       = optional(number, 168)
  })
  default = {}

  validation {
    condition     = contains([0, 1, 2, 3, 4, 5, 6, 7], var.recovery.firestore_backup_retention_days)
    error_message = "recovery.firestore_backup_retention_days must be a whole number of days from 1 to 7 (Firestore's limit for daily backups), or 0 for no backup schedule."
  }
  validation {
    condition     = contains([48, 72, 96, 120, 144, 168], var.recovery.bigquery_time_travel_hours)
    error_message = "recovery.bigquery_time_travel_hours must be 48, 72, 96, 120, 144 or 168 (2 to 7 days)."
  }
}
